/** GRUB's environment block (/boot/grub/grubenv): saved_entry, next_entry. Read only; GRUB's own tools write it. */
import { existsSync, readFileSync } from 'node:fs';

export function readGrubEnv(path: string): Map<string, string> {
  const env = new Map<string, string>();
  if (!existsSync(path)) return env;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq > 0) env.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return env;
}
