/** /proc/meminfo's MemAvailable (KiB): how much the domain could still allocate. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BalloonFormatError } from './interface.js';

export function memAvailableKb(root: string): number {
  const file = join(root, 'proc/meminfo');
  const m = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync(file, 'utf8'));
  if (!m) throw new BalloonFormatError(`${file}: no "MemAvailable: N kB" line`);
  return Number(m[1]);
}
