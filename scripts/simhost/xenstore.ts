/**
 * The simulated host's `xenstore-read` in dom0, for the keys the agent
 * reads: /local/domain/<id>/memory/target and memory/static-max (KiB, the
 * balloon driver's), and domid. A relative key is dom0's own
 * (/local/domain/0/...). A key it does not have is answered as
 * xenstore_client.c does: "xenstore-read: couldn't read path P", exit 1.
 */
import { balloonStaticMaxKb, balloonTargetKb } from './balloon.js';
import { readJson } from './fsutil.js';
import type { SimLayout } from './layout.js';
import { domainRoot } from './runners.js';
import type { RunningState } from './types.js';
import type { Io } from './xl.js';

function lookup(layout: SimLayout, key: string): string | null {
  const abs = key.startsWith('/') ? key : `/local/domain/0/${key}`;
  const m = /^\/local\/domain\/(\d+)\/(domid|memory\/target|memory\/static-max)$/.exec(abs);
  if (!m) return null;
  const id = Number(m[1]);
  const r = readJson<RunningState>(layout.running);
  if (!r || r.kind === 'down' || !r.dom0) return null;
  const d = id === 0 ? r.dom0 : r.domains.find((x) => x.id === id);
  if (!d) return null;
  if (m[2] === 'domid') return String(id);
  const root = id === 0 ? layout.root : domainRoot(layout, d.name);
  const kb = m[2] === 'memory/target' ? balloonTargetKb(root) : balloonStaticMaxKb(root);
  return kb === null ? null : String(kb);
}

export function xenstoreReadMain(layout: SimLayout, args: string[], io: Io): number {
  const keys = args.filter((a) => !a.startsWith('-'));
  if (keys.length === 0) {
    io.err('Usage: xenstore-read [-h] [-p] [-s] [-R] key [...]\n');
    return 2;
  }
  for (const k of keys) {
    const v = lookup(layout, k);
    if (v === null) {
      io.err(`xenstore-read: couldn't read path ${k}\n`);
      return 1;
    }
    io.out(`${v}\n`);
  }
  return 0;
}
