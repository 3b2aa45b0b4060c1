/**
 * The target to put back. Written before the suite's first write and removed
 * only once the target is back, so that a suite killed at any moment (even
 * by SIGKILL, in the middle of its rapid writes) leaves a record that the
 * next run, or `xentest balloon --restore`, uses first.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../shared/atomic.js';
import type { InterfaceName } from './interface.js';

export interface RestoreRecord {
  interface: InterfaceName;
  /** For xl: the domain acted on. */
  domain: string | null;
  targetKb: number;
  pid: number;
  startedAt: string;
}

export function restoreFile(stateDir: string): string {
  return join(stateDir, 'balloon-restore.json');
}

export function saveRestore(stateDir: string, record: RestoreRecord): void {
  writeFileAtomic(restoreFile(stateDir), JSON.stringify(record) + '\n', { createDir: true });
}

export function readRestore(stateDir: string): RestoreRecord | null {
  let text: string;
  try {
    text = readFileSync(restoreFile(stateDir), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    const r = JSON.parse(text) as RestoreRecord;
    if (typeof r.targetKb === 'number' && typeof r.interface === 'string') return r;
  } catch {
    // A torn file cannot happen (atomic replace); anything else is not ours to act on.
  }
  throw new Error(`${restoreFile(stateDir)} is not a restore record; look at it and remove it`);
}

export function clearRestore(stateDir: string): void {
  rmSync(restoreFile(stateDir), { force: true });
}
