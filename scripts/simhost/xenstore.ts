/**
 * The simulated host's `xenstore-read` (tools/xenstore/xenstore_client.c),
 * in dom0 and in every guest, for the keys the agent reads:
 * /local/domain/<id>/domid, memory/target and memory/static-max (KiB, the
 * balloon driver's; dom0's memory keys only after the first xl mem-set, as
 * libxl writes them then). A relative key is the caller's own
 * (/local/domain/<its id>/...: dom0's, or in a guest the guest's, found by
 * its XENTEST_ROOT); a guest may read only its own subtree, as xenstored's
 * permissions allow. A key it cannot read is answered as the client does:
 * "xenstore-read: couldn't read path P", exit 1 (warnx), after printing the
 * keys before it.
 */
import * as path from 'node:path';
import { xenstoreMemory } from './balloon.js';
import { readJson } from './fsutil.js';
import { domainRoot, type SimLayout } from './layout.js';
import type { DomainState, RunningState } from './types.js';
import type { Io } from './xl.js';

/** The domain this xenstore-read runs in: dom0, or the guest whose root is XENTEST_ROOT. */
function callerDomain(layout: SimLayout, r: RunningState & { dom0: DomainState }, env: NodeJS.ProcessEnv): DomainState | null {
  const root = env.XENTEST_ROOT ? path.resolve(env.XENTEST_ROOT) : layout.root;
  if (root === layout.root) return r.dom0;
  return r.domains.find((d) => domainRoot(layout, d.name) === root) ?? null;
}

function lookup(layout: SimLayout, key: string, env: NodeJS.ProcessEnv): string | null {
  const r = readJson<RunningState>(layout.running);
  if (!r || r.kind !== 'xen' || !r.dom0) return null;
  const running = r as RunningState & { dom0: DomainState };
  const caller = callerDomain(layout, running, env);
  if (!caller) return null;
  const abs = key.startsWith('/') ? key : `/local/domain/${caller.id}/${key}`;
  const m = /^\/local\/domain\/(\d+)\/(domid|memory\/target|memory\/static-max)$/.exec(abs);
  if (!m) return null;
  const id = Number(m[1]);
  // A guest's node is readable by dom0 and the guest itself only (EACCES: "couldn't read path").
  if (caller.id !== 0 && id !== caller.id) return null;
  const d = id === 0 ? running.dom0 : running.domains.find((x) => x.id === id);
  if (!d) return null;
  if (m[2] === 'domid') return String(id);
  const root = id === 0 ? layout.root : domainRoot(layout, d.name);
  const kb = xenstoreMemory(root, m[2] === 'memory/target' ? 'target' : 'static-max');
  return kb === null ? null : String(kb);
}

export function xenstoreReadMain(layout: SimLayout, args: string[], io: Io, env: NodeJS.ProcessEnv = process.env): number {
  let prefix = false;
  const keys: string[] = [];
  for (const a of args) {
    if (a === '-h' || a === '--help') {
      io.err('xenstore-read: Usage: xenstore-read [-h] [-p] [-s] [-R] key [...]\n');
      return 1;
    }
    if (a === '-p' || a === '--prefix') prefix = true;
    else if (a.startsWith('-')) continue;
    else keys.push(a);
  }
  if (keys.length === 0) {
    io.err('xenstore-read: Usage: xenstore-read [-h] [-p] [-s] [-R] key [...]\n');
    return 1;
  }
  for (const k of keys) {
    const v = lookup(layout, k, env);
    if (v === null) {
      io.err(`xenstore-read: couldn't read path ${k}\n`);
      return 1;
    }
    io.out(`${prefix ? `${k}: ` : ''}${v}\n`);
  }
  return 0;
}
