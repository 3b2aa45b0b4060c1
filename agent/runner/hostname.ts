/**
 * Which domain this runner is: --hostname, else XENTEST_HOSTNAME, else the
 * machine's hostname (and, for a fully qualified one, the part before the
 * first dot, if no directory has the full name: control files usually name
 * domains by their short names).
 */
import * as os from 'node:os';

/** The names this runner answers to, best first. */
export function hostnameCandidates(option: string | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  const given = option ?? (env.XENTEST_HOSTNAME || undefined);
  if (given !== undefined) return [given];
  const full = os.hostname();
  const short = full.split('.')[0] ?? '';
  return full.includes('.') && short !== '' ? [full, short] : [full];
}

/**
 * Why `name` cannot name a directory the runner may write into, or
 * undefined if it can. Only hostname characters are allowed: no path
 * separators, no "." or "..", nothing a shell or a path could read as more.
 */
export function hostnameProblem(name: string): string | undefined {
  if (name === '') return 'the hostname is empty';
  if (name === '.' || name === '..') return `"${name}" is not a hostname`;
  if (!/^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252})$/.test(name)) {
    return `"${name}" is not a hostname (letters, digits, "-", "_" and "." only): it cannot name a directory in the shared directory`;
  }
  return undefined;
}
