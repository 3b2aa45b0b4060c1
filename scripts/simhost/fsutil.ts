/**
 * File primitives for the simulated machine's own state (D/state, D/log):
 * whole-file replacement by rename, appends of one JSON line, and a short
 * mutual-exclusion lock between the fake commands and boot processes, which
 * run as separate processes and update the same JSON files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export function writeFileReplacing(file: string, content: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  fs.writeFileSync(tmp, content);
  fs.renameSync(tmp, file);
}

export function writeJson(file: string, value: unknown): void {
  writeFileReplacing(file, JSON.stringify(value, null, 2) + '\n');
}

export function readJson<T>(file: string): T | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return JSON.parse(text) as T;
}

/** One line, one write(2) with O_APPEND: concurrent writers do not interleave lines this short. */
export function appendJsonLine(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.appendFileSync(file, JSON.stringify(value) + '\n');
}

export function readJsonLines<T>(file: string): T[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);
}

const LOCK_STALE_MS = 10_000;
const LOCK_UNOWNED_MS = 2_000;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Run fn holding the lock directory `${file}.lock`. A lock left by a dead
 * process (a command killed mid-way, a power cut) is broken; so is one held
 * longer than any update could take.
 */
export function withFileLock<T>(file: string, fn: () => T): T {
  const lockDir = `${file}.lock`;
  fs.mkdirSync(path.dirname(lockDir), { recursive: true });
  const deadline = Date.now() + 30_000;
  for (;;) {
    // Taken whole or not at all: the lock appears with its owner's pid in it (a rename), so a process
    // killed while taking it leaves at most a stray .take directory, never an ownerless lock.
    const take = `${lockDir}.take.${process.pid}.${Math.random().toString(36).slice(2)}`;
    fs.mkdirSync(take);
    fs.writeFileSync(path.join(take, 'pid'), String(process.pid));
    try {
      fs.renameSync(take, lockDir);
      break;
    } catch (e) {
      fs.rmSync(take, { recursive: true, force: true });
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw e;
      breakStaleLock(lockDir);
      if (Date.now() > deadline) throw new Error(`${lockDir}: held for more than 30 s`);
      sleepSync(3);
    }
  }
  try {
    return fn();
  } finally {
    fs.rmSync(lockDir, { recursive: true, force: true });
  }
}

function breakStaleLock(lockDir: string): void {
  let owner: number | undefined;
  let age = 0;
  try {
    age = Date.now() - fs.statSync(lockDir).mtimeMs;
  } catch {
    // Removed right now: look again shortly.
    return;
  }
  try {
    owner = Number(fs.readFileSync(path.join(lockDir, 'pid'), 'utf8'));
  } catch {
    // No owner (a lock taken the old way by a process killed at once): broken after a moment.
    if (age > LOCK_UNOWNED_MS) fs.rmSync(lockDir, { recursive: true, force: true });
    return;
  }
  if ((owner > 0 && !pidAlive(owner)) || age > LOCK_STALE_MS) fs.rmSync(lockDir, { recursive: true, force: true });
}
