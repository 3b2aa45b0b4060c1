/** The few xenstore keys the suite reads, through xenstore-read (absent in many guests: then null). */
import { outputIfSucceeded } from '../../shared/process/capture.js';

export async function xenstoreNumber(key: string, env?: NodeJS.ProcessEnv): Promise<number | null> {
  let out: string | null;
  try {
    out = await outputIfSucceeded(['xenstore-read', key], env);
  } catch {
    return null;
  }
  if (out === null) return null;
  const text = out.trim();
  return /^\d+$/.test(text) ? Number(text) : null;
}
