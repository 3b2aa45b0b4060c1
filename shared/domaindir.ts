/**
 * A domain's directory in the shared directory: the whole contract between
 * dom0 and the runner in each domain (the paper's xenstartdoms and
 * xenruntests). dom0 creates it and puts a copy of the control file in it;
 * the runner in the domain whose hostname names it runs that domain's tests,
 * writes its results below it, and removes the control file copy last: that
 * marks the domain complete and keeps it from running twice.
 *
 *   <shared_dir>/<hostname>/xentest.conf    the control file copy (present: work to do)
 *   <shared_dir>/<hostname>/night           the id of the night that dispatched it
 *   <shared_dir>/<hostname>/results/        the runner's results: status.log, keyval, one directory per test
 *   <shared_dir>/<hostname>/runner.json     the runner's journal (which tests are done)
 *   <shared_dir>/<hostname>/runner.lock     one runner per domain at a time
 *
 * The shared directory is normally an NFS mount: every path here may be slow
 * or briefly unavailable, and nobody watches it with inotify (it does not see
 * changes made by other machines); it is polled.
 */
import { join } from 'node:path';

/** Where the runner looks when nothing else says (the paper's example). */
export const DEFAULT_SHARED_DIR = '/xentest/shared';

export interface DomainDir {
  readonly root: string;
  readonly control: string;
  readonly night: string;
  readonly results: string;
  readonly runnerJournal: string;
  readonly runnerLock: string;
}

export function domainDir(sharedDir: string, hostname: string): DomainDir {
  if (hostname === '' || hostname === '.' || hostname === '..' || hostname.includes('/')) {
    throw new Error(`bug: "${hostname}" is not a domain name that can name a directory`);
  }
  const root = join(sharedDir, hostname);
  return {
    root,
    control: join(root, 'xentest.conf'),
    night: join(root, 'night'),
    results: join(root, 'results'),
    runnerJournal: join(root, 'runner.json'),
    runnerLock: join(root, 'runner.lock'),
  };
}

/**
 * Errors that mean "the shared directory is not reachable right now" (an NFS
 * server restarting, a soft mount timing out, a remount), as opposed to an
 * answer about what is in it. ENOENT is not among them: a missing file is an
 * answer, unless the directory it was looked up in is missing too, which each
 * side checks for itself (the runner: its domain's directory; dom0: the
 * domain's directory it dispatched).
 */
const UNAVAILABLE_CODES: ReadonlySet<string> = new Set(['EIO', 'ESTALE', 'ENOTCONN', 'ETIMEDOUT', 'EHOSTDOWN', 'EHOSTUNREACH']);

export function isUnavailableError(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && UNAVAILABLE_CODES.has(code);
}

/** The runner's shared directory: --shared-dir, else XENTEST_SHARED_DIR, else DEFAULT_SHARED_DIR. */
export function runnerSharedDir(option: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return option ?? (env.XENTEST_SHARED_DIR || DEFAULT_SHARED_DIR);
}
