/**
 * Paths that come from data (a status.log's subdir, a test's log name) and
 * must not lead out of the directory they are relative to: a guest domain
 * writes its own status.log, and nothing it writes may make dom0 read, or
 * show in a report, a file outside that domain's results.
 */
import { realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';

function isInside(base: string, target: string): boolean {
  const rel = relative(base, target);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

/** `base/rel` when it stays inside `base` by its spelling (no `..` out, not absolute), else null. */
export function containedPath(base: string, rel: string): string | null {
  const target = resolve(base, rel);
  return isInside(resolve(base), target) ? target : null;
}

/**
 * `base/rel` when the file it names exists and really is inside `base`,
 * symbolic links followed on both sides; else null (missing, or out).
 */
export function containedExistingPath(base: string, rel: string): string | null {
  const target = containedPath(base, rel);
  if (target === null) return null;
  try {
    return isInside(realpathSync(base), realpathSync(target)) ? target : null;
  } catch {
    return null;
  }
}
