/**
 * From a failing run to the shortest sequence of calls that still fails:
 * delta debugging (Zeller's ddmin) over the calls sent before the failure,
 * the failing call always last. Each candidate is replayed on a fresh
 * backend (the simulated hypervisor as the run found it; on real Xen the
 * same machine, the run's own domains destroyed after each replay).
 */
import type { DomctlCall } from './domctl.js';
import { runSession, type Output, type SentCall } from './session.js';
import type { SafetyRules } from './safety.js';
import type { FuzzTarget } from './target.js';

const silent: Output = { write() {}, flush() {} };

export interface Minimized {
  calls: DomctlCall[];
  replays: number;
}

export async function minimizeFailure(target: FuzzTarget, failing: SentCall, before: readonly SentCall[], safety: SafetyRules): Promise<Minimized> {
  let replays = 0;
  const fails = async (prefix: readonly DomctlCall[]): Promise<boolean> => {
    replays += 1;
    const calls = [...prefix, failing.call];
    const backend = target.open();
    try {
      const r = await runSession(target, backend, { calls, quiet: true, safety, record: false }, silent);
      return r.failures.some((f) => f.n === calls.length);
    } finally {
      backend.close();
    }
  };
  const prefix = before.filter((s) => s.n < failing.n).map((s) => s.call);
  const kept = (await fails([])) ? [] : await ddmin(prefix, fails);
  return { calls: [...kept, failing.call], replays };
}

/** The smallest subsequence (1-minimal) of items for which test holds; test(items) is known to hold. */
async function ddmin<T>(all: readonly T[], test: (xs: readonly T[]) => Promise<boolean>): Promise<T[]> {
  let items = [...all];
  let n = 2;
  while (items.length >= 2) {
    const size = Math.ceil(items.length / n);
    const chunks: T[][] = [];
    for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
    let reduced = false;
    for (const c of chunks) {
      if (await test(c)) {
        items = c;
        n = 2;
        reduced = true;
        break;
      }
    }
    if (!reduced && chunks.length > 2) {
      for (let i = 0; i < chunks.length; i++) {
        const rest = chunks.filter((_, j) => j !== i).flat();
        if (await test(rest)) {
          items = rest;
          n = Math.max(n - 1, 2);
          reduced = true;
          break;
        }
      }
    }
    if (!reduced) {
      if (n >= items.length) break;
      n = Math.min(items.length, n * 2);
    }
  }
  if (items.length === 1 && (await test([]))) return [];
  return items;
}
