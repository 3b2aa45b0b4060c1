/**
 * Is this domain privileged (dom0, or a driver domain with control rights)?
 * Xen says so in /proc/xen/capabilities: "control_d" in dom0, empty in an
 * ordinary guest. Some tests (privileged hypercalls, the paper's settime or
 * iopl) must fail in an unprivileged domain, and there that failure is the
 * pass.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export type Privilege =
  | { kind: 'privileged'; why: string }
  | { kind: 'unprivileged'; why: string }
  /** No /proc/xen/capabilities (not under Xen, or xenfs not mounted): treated as privileged. */
  | { kind: 'unknown'; why: string };

export function detectPrivilege(env: NodeJS.ProcessEnv = process.env): Privilege {
  const file = join(env.XENTEST_ROOT || '/', 'proc/xen/capabilities');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    return { kind: 'unknown', why: `${file} cannot be read (${code}); treated as privileged, so every test is expected to pass` };
  }
  return /\bcontrol_d\b/.test(text)
    ? { kind: 'privileged', why: `${file} says control_d` }
    : { kind: 'unprivileged', why: `${file} does not say control_d` };
}

/** Treated as privileged unless Xen says otherwise. */
export function isUnprivileged(p: Privilege): boolean {
  return p.kind === 'unprivileged';
}
