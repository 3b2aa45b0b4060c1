/**
 * The runner's own file operations on its domain directory in the shared
 * directory, made to survive a brief outage of that directory (an NFS server
 * restarting, a soft mount timing out, a remount): an operation that fails
 * because the directory is away (the domain root is gone: ENOENT on it; EIO,
 * ESTALE, ENOTCONN, ETIMEDOUT) is tried again with backoff for up to two
 * minutes, then given up with an error that says so.
 *
 * Every operation first checks that the domain root is there and is a real
 * directory. That check matters as much as the retry: `mkdir -p` below a
 * shared directory that is momentarily away would otherwise quietly create a
 * new, empty tree in its place on the local disk.
 *
 * The retry sleeps synchronously (Atomics.wait): the operations are the
 * small synchronous writes of the journal, status.log and keyvals, which the
 * step runner makes synchronously. A test's commands are not covered: their
 * cwd is the domain's tempdir, and a test that uses the shared directory
 * itself sees the outage as it would without xentest.
 */
import * as fs from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { syncDirectory, writeFileAtomic } from '../../shared/atomic.js';
import { isUnavailableError, type DomainDir } from '../../shared/domaindir.js';

export const DEFAULT_OUTAGE_LIMIT_MS = 120_000;
const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 5_000;

/** The domain directory is not what a runner may write into (a symlink, not a directory). */
export class DomainDirRefused extends Error {
  override readonly name = 'DomainDirRefused';
}

/** The shared directory stayed away longer than the runner waits. */
export class SharedDirUnavailable extends Error {
  override readonly name = 'SharedDirUnavailable';
}

/** The domain root is missing: the shared directory is away (or was never mounted). */
class RootAway extends Error {
  readonly code = 'ENOENT';
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function errnoCode(e: unknown): string | undefined {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export interface DomainAreaOptions {
  /** How long an outage may last before the runner gives up (default two minutes). */
  outageLimitMs?: number;
  /** One line when an outage starts and when it ends. */
  say?: (line: string) => void;
}

export class DomainArea {
  private readonly limitMs: number;
  private readonly say: (line: string) => void;

  constructor(
    readonly dir: DomainDir,
    options: DomainAreaOptions = {},
  ) {
    this.limitMs = options.outageLimitMs ?? DEFAULT_OUTAGE_LIMIT_MS;
    this.say = options.say ?? (() => {});
  }

  /**
   * The domain root is a real directory (throws DomainDirRefused for a
   * symlink or anything else, RootAway if it is missing).
   */
  checkRoot(): void {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(this.dir.root);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw new RootAway(`${this.dir.root} is not there`);
      throw e;
    }
    if (st.isSymbolicLink()) {
      throw new DomainDirRefused(`${this.dir.root} is a symbolic link; a domain's runner writes only into a real directory of its own`);
    }
    if (!st.isDirectory()) throw new DomainDirRefused(`${this.dir.root} is not a directory`);
  }

  /** Run `fn` on the domain directory, waiting out an outage of the shared directory. */
  op<T>(what: string, fn: () => T): T {
    const started = Date.now();
    let delay = FIRST_DELAY_MS;
    let outage: string | undefined;
    for (;;) {
      try {
        this.checkRoot();
        const result = fn();
        if (outage) this.say(`shared directory back after ${((Date.now() - started) / 1000).toFixed(1)} s (${what})`);
        return result;
      } catch (e) {
        if (!this.isOutage(e)) throw e;
        const why = e instanceof Error ? e.message : String(e);
        if (Date.now() - started >= this.limitMs) {
          throw new SharedDirUnavailable(
            `${what}: the shared directory has been unavailable for ${Math.round(this.limitMs / 1000)} s (${why}); giving up`,
            { cause: e },
          );
        }
        if (!outage) this.say(`shared directory unavailable (${what}: ${why}); retrying for up to ${Math.round(this.limitMs / 1000)} s`);
        outage = why;
        sleepSync(delay);
        delay = Math.min(delay * 2, MAX_DELAY_MS);
      }
    }
  }

  private isOutage(e: unknown): boolean {
    if (e instanceof RootAway) return true;
    if (isUnavailableError(e)) return true;
    const code = errnoCode(e);
    // ENOENT on something inside is an outage only if the root itself went away meanwhile.
    if (code === 'ENOENT') {
      try {
        fs.lstatSync(this.dir.root);
        return false;
      } catch {
        return true;
      }
    }
    return false;
  }

  /** A path below the domain root (refuses one that would leave it). */
  path(...parts: string[]): string {
    const p = resolve(this.dir.root, ...parts);
    const rel = relative(this.dir.root, p);
    if (rel === '' || rel === '..' || rel.startsWith('..' + sep) || rel.startsWith('/')) {
      throw new Error(`bug: ${p} is not below ${this.dir.root}`);
    }
    return p;
  }

  /**
   * Make a directory below the root, each component a real directory (a
   * symlink planted in the domain directory is refused, not followed).
   */
  mkdir(path: string): void {
    this.op(`mkdir ${path}`, () => {
      const rel = relative(this.dir.root, path);
      let cur = this.dir.root;
      for (const part of rel.split(sep)) {
        cur = join(cur, part);
        try {
          fs.mkdirSync(cur);
        } catch (e) {
          if (errnoCode(e) !== 'EEXIST') throw e;
        }
        const st = fs.lstatSync(cur);
        if (!st.isDirectory()) throw new DomainDirRefused(`${cur} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}; refusing to write through it`);
      }
    });
  }

  /** Replace a file atomically (temporary file, fsync, rename, fsync the directory); its directory must exist. */
  writeAtomic(path: string, content: string): void {
    this.op(`write ${path}`, () => writeFileAtomic(path, content, { createDir: false }));
  }


  /** Remove a file (absent is fine) and make the removal durable. */
  remove(path: string): void {
    this.op(`remove ${path}`, () => {
      fs.rmSync(path, { force: true });
      syncDirectory(dirname(path));
    });
  }

  /** fsync every file and directory below `dir` (the results), so they are on the server before the control copy goes. */
  syncTree(dir: string): void {
    this.op(`sync ${dir}`, () => syncTreeNow(dir));
  }
}


function syncTreeNow(dir: string): void {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return;
    throw e;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) syncTreeNow(p);
    else if (e.isFile()) {
      const fd = fs.openSync(p, 'r');
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
  }
  syncDirectory(dir);
}
