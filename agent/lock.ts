/**
 * Never two nights at once: a lock file naming its holder.
 *
 * Taking the lock is one link(2) of a complete, fsynced temporary file onto
 * the lock path. link fails if the path exists, so exactly one process gets
 * it, and the lock file is never seen half-written.
 *
 * A lock whose holder is dead is stale and is taken over. "Dead" means: the
 * lock was taken in an earlier boot (the boot id, /proc/sys/kernel/random/boot_id,
 * differs: a night's lock normally outlives its reboot), or no process has that pid, or
 * the process with that pid started at another time (field 22 of
 * /proc/PID/stat: the pid was reused), or it is a zombie. A lock taken on
 * another host (a state directory on a shared filesystem) cannot be checked
 * and counts as alive.
 *
 * Removing a stale lock is the only dangerous moment: two processes may find
 * the same stale file, and the slower one must not remove the lock the faster
 * one has just taken in its place. So a stale lock is removed only by the
 * process that wins a claim on that particular lock file: an O_EXCL-style
 * link of a claim file whose name is derived from the stale file's content.
 * The winner re-reads the lock path, and removes it only if it still holds
 * exactly that content. Nothing else ever removes a lock file but its own
 * holder, so between that re-read and the unlink it cannot change. A claim
 * whose holder died (it is held for microseconds) is itself stale and is
 * removed the same way, one level down.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { machinePaths } from './machine.js';
import { processStartTime } from '../shared/process/procstat.js';

export interface LockHolder {
  pid: number;
  /** Field 22 of /proc/PID/stat (clock ticks after boot): with the pid, identifies the process. */
  startTime: string;
  hostname: string;
  /** What it is doing, e.g. "xentest build /etc/xentest/nightly.cfg". */
  purpose: string;
  /** ISO 8601 time it took the lock. */
  since: string;
  /** The boot it was taken in: a lock from an earlier boot is stale whatever its pid. */
  bootId?: string;
}

export class LockBusy extends Error {
  override readonly name = 'LockBusy';

  constructor(
    readonly path: string,
    readonly holder: LockHolder,
  ) {
    super(describeBusy(path, holder));
  }
}

export interface Lock {
  /** Removes the lock file if it is still ours. Safe to call more than once. */
  release(): void;
  readonly holder: LockHolder;
}

/**
 * Points where the race tests stretch the window between a check and the act
 * that relies on it (by sleeping there), to show that no interleaving breaks
 * the lock. Never set outside tests.
 */
export const raceTestHooks: { pause?: (point: 'stale-seen' | 'before-unlink') => void } = {};

/** How long to keep trying while another process is in the middle of removing a stale lock. */
const RECOVERY_WAIT_MS = 5000;
/** Claims on claims: each level needs a process to die within microseconds of taking it. */
const MAX_CLAIM_DEPTH = 4;

export function acquireLock(lockPath: string, purpose: string): Lock {
  fs.mkdirSync(path.dirname(path.resolve(lockPath)), { recursive: true });
  sweepLitter(lockPath);
  const holder = currentHolder(purpose);
  const content = Buffer.from(JSON.stringify(holder) + '\n');
  const deadline = Date.now() + RECOVERY_WAIT_MS;
  for (;;) {
    if (linkNew(lockPath, content)) {
      let released = false;
      return {
        holder,
        release(): void {
          if (released) return;
          released = true;
          removeIfContent(lockPath, content);
        },
      };
    }
    const existing = readRaw(lockPath);
    if (existing === undefined) continue; // released in between: try again
    const current = parseHolder(existing);
    if (current && holderAlive(current)) throw new LockBusy(lockPath, current);
    raceTestHooks.pause?.('stale-seen');
    if (!removeStale(lockPath, existing, 0) && Date.now() > deadline) {
      throw new Error(`${lockPath}: another process has been removing the stale lock for ${RECOVERY_WAIT_MS / 1000} s; try again`);
    }
  }
}

/** The holder named in the lock file; undefined if there is none (or it cannot be read). */
export function readLock(lockPath: string): LockHolder | undefined {
  const raw = readRaw(lockPath);
  return raw === undefined ? undefined : parseHolder(raw);
}

/** Whether the holder still runs (false: the lock is stale and the next acquireLock takes it over). */
export function holderAlive(h: LockHolder): boolean {
  if (h.hostname !== os.hostname()) return true;
  const boot = currentBootId();
  if (h.bootId && boot && h.bootId !== boot) return false;
  if (!Number.isInteger(h.pid) || h.pid <= 0) return false;
  try {
    process.kill(h.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    // EPERM: it exists but is not ours to signal; the start time tells.
  }
  if (!fs.existsSync('/proc/self/stat')) return true; // no /proc: the pid is all we have
  return processStartTime(h.pid) === h.startTime;
}

function describeBusy(lockPath: string, h: LockHolder): string {
  const who = `pid ${h.pid} ("${h.purpose}")`;
  if (h.hostname !== os.hostname()) {
    return (
      `another night holds the lock ${lockPath}: ${who} on host ${h.hostname}, since ${h.since}; ` +
      `xentest cannot tell from here whether it still runs. Wait for it, or if it is gone, remove ${lockPath}`
    );
  }
  return (
    `another night is running: ${who} has held ${lockPath} since ${h.since}. ` +
    `Wait for it to finish, or stop it (kill ${h.pid}); its lock is recovered by itself once that process is gone`
  );
}

function currentHolder(purpose: string): LockHolder {
  const bootId = currentBootId();
  return {
    pid: process.pid,
    startTime: processStartTime(process.pid) ?? '',
    hostname: os.hostname(),
    purpose,
    since: new Date().toISOString(),
    ...(bootId ? { bootId } : {}),
  };
}


/**
 * The machine's boot id, from the same place the rest of the agent reads it
 * (under XENTEST_ROOT on the simulated host, whose fake reboots change it),
 * read every time because it may change under a simulated host.
 */
function currentBootId(): string | undefined {
  try {
    return fs.readFileSync(machinePaths().bootIdFile, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function parseHolder(raw: Buffer): LockHolder | undefined {
  let v: unknown;
  try {
    v = JSON.parse(raw.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (
    typeof o.pid !== 'number' ||
    typeof o.startTime !== 'string' ||
    typeof o.hostname !== 'string' ||
    typeof o.purpose !== 'string' ||
    typeof o.since !== 'string' ||
    (o.bootId !== undefined && typeof o.bootId !== 'string')
  ) {
    return undefined;
  }
  return {
    pid: o.pid,
    startTime: o.startTime,
    hostname: o.hostname,
    purpose: o.purpose,
    since: o.since,
    ...(typeof o.bootId === 'string' ? { bootId: o.bootId } : {}),
  };
}

function readRaw(file: string): Buffer | undefined {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * Create `file` with `content` only if it does not exist, never visible half
 * written: a complete, fsynced temporary file is linked into place.
 */
function linkNew(file: string, content: Buffer): boolean {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = fs.openSync(tmp, 'wx', 0o644);
  try {
    fs.writeFileSync(fd, content);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.linkSync(tmp, file);
    syncDirectory(path.dirname(path.resolve(file)));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on a directory; the link itself is done.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Unlink `file` if it holds exactly `content`. Only for a file no one else may remove meanwhile. */
function removeIfContent(file: string, content: Buffer): boolean {
  const now = readRaw(file);
  if (now === undefined || !now.equals(content)) return false;
  raceTestHooks.pause?.('before-unlink');
  try {
    fs.unlinkSync(file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/**
 * Remove the stale lock `file` if it still holds `stale`, race-free (see the
 * top of this file). True if this call settled it (removed it, or found it
 * already replaced); false if another process is removing it right now.
 */
function removeStale(file: string, stale: Buffer, depth: number): boolean {
  const claimPath = `${file}.stale-${createHash('sha256').update(stale).digest('hex').slice(0, 16)}`;
  const claim = Buffer.from(JSON.stringify(currentHolder(`removing the stale lock ${file}`)) + '\n');
  if (!linkNew(claimPath, claim)) {
    const other = readRaw(claimPath);
    if (other === undefined) return false; // its holder just finished: look again
    const otherHolder = parseHolder(other);
    if (otherHolder && holderAlive(otherHolder)) {
      pause(2);
      return false;
    }
    if (depth >= MAX_CLAIM_DEPTH) throw new Error(`${claimPath}: stale claims nested ${depth} deep; remove ${file}.stale-* by hand`);
    removeStale(claimPath, other, depth + 1);
    return false;
  }
  try {
    removeIfContent(file, stale);
    return true;
  } finally {
    removeIfContent(claimPath, claim);
  }
}

/** Temporary and claim files left by processes that died mid-way. */
function sweepLitter(lockPath: string): void {
  const dir = path.dirname(path.resolve(lockPath));
  const base = path.basename(lockPath);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(base + '.')) continue;
    const rest = name.slice(base.length + 1);
    const tmp = /^(?:.*\.)?(\d+)\.[0-9a-f]{12}\.tmp$/.exec(rest);
    if (tmp) {
      // Named after a dead process, so no one is writing it.
      if (!pidExists(Number(tmp[1]))) fs.rmSync(path.join(dir, name), { force: true });
      continue;
    }
    if (/^stale-[0-9a-f]{16}(\.stale-[0-9a-f]{16})*$/.test(rest)) {
      const claimPath = path.join(dir, name);
      const raw = readRaw(claimPath);
      const h = raw && parseHolder(raw);
      if (raw && !(h && holderAlive(h))) removeStale(claimPath, raw, rest.split('.').length);
    }
  }
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
