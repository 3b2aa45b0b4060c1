/**
 * The simulated host's balloon driver: one per domain, behind the files a
 * real kernel has, with the real kernel's rules. Which rule comes from where:
 *
 * - kind 'sysfs', mainline Linux, drivers/xen/xen-balloon.c: xen_memory0's
 *   target_kb (store_target_kb: capable(CAP_SYS_ADMIN) or EPERM, then
 *   simple_strtoull(buf, &end, 0) * 1024, then >> PAGE_SHIFT) and target
 *   (store_target: the same check, memparse, >> PAGE_SHIFT); both return the
 *   whole count and validate nothing else (garbage is a target of 0).
 *   info/current_kb, info/low_kb, info/high_kb (BALLOON_SHOW, 0444),
 *   schedule_delay and retry_count (0444), max_schedule_delay and
 *   max_retry_count (DEVICE_ULONG_ATTR 0644: device_store_ulong, kstrtoul
 *   base 0, no capability check). kernfs (fs/kernfs/file.c) hands a store at
 *   most PAGE_SIZE bytes, NUL-terminated, and sysfs_kf_write returns 0 for a
 *   0-byte write without calling it; the file position is not looked at.
 * - The allocation, drivers/xen/balloon.c (mainline) and the 2.6.18 driver
 *   alike: balloon_set_new_target only records the target; a worker moves
 *   current_pages toward it. Ballooning down allocates pages with
 *   __GFP_NORETRY and gives up when none is free, so memory the domain's
 *   processes hold is never taken; ballooning up gets what Xen gives, never
 *   more than the domain's static maximum (max_pages) or the host's free
 *   memory.
 * - kind 'proc', XenLinux 2.6.18-xen, drivers/xen/balloon/balloon.c:
 *   /proc/xen/balloon (0644). balloon_write: capable(CAP_SYS_ADMIN) or
 *   EPERM, count <= 1 EBADMSG ("runt"), count > 64 EFBIG, in that order;
 *   copy into char memstring[64] with memstring[63] = 0, memparse,
 *   balloon_set_new_target(bytes >> PAGE_SHIFT), which also resets
 *   hard_limit to ~0; returns count. balloon_read's sprintf is rendered
 *   byte for byte. increase_reservation sets hard_limit when Xen gives fewer
 *   pages than asked: "Xen hard limit" is then the allocation Xen stopped it
 *   at, "??? kB" before.
 * - memparse, lib/cmdline.c: simple_strtoull base 0 (lib/vsprintf.c:
 *   "0x" hex when a hex digit follows, a leading 0 octal, else decimal; no
 *   whitespace skipped; wraps at 64 bits), then one suffix, either case:
 *   mainline K M G T P E; the 2.6.18 tree's memparse knows K M G only.
 * - memory/target and memory/static-max (KiB), libxl_mem.c: xl mem-set
 *   (libxl_set_memory_target) checks the target against static-max and, for
 *   dom0, LIBXL_MIN_DOM0_MEM, then writes memory/target; the driver's
 *   xenstore watch takes it as its target. dom0's keys are written by the
 *   first xl mem-set (libxl__fill_dom0_memory_info).
 *
 * The allocation moves at XENTEST_SIM_BALLOON_KIB_PER_S (default 262144,
 * 256 MiB/s), computed lazily from the time of the last target change: no
 * process runs in the background. What the domain holds is 32 MiB for its
 * kernel plus the resident memory (VmRSS) of every process whose environment
 * has XENTEST_ROOT=<the domain's root>.
 *
 * Planted bugs (XENTEST_SIM_BALLOON_BUG in the writing process):
 * target-not-applied (a write succeeds, the target stays), runt-einval (a
 * 1-byte /proc write is EINVAL, not EBADMSG), current-stuck (the allocation
 * never moves again).
 *
 * State: <root>/var/lib/simhost/balloon.json, replaced atomically under a
 * lock (dom0's xl and the guest may write at once). The interface files are
 * real files holding what a read gave at the last change; a read through
 * the hook (balloon-hook.ts) gets them as they are at that instant.
 */
import fs from 'node:fs';
import path from 'node:path';
import { withFileLock, writeFileReplacing } from './fsutil.js';
import { domainRoot, simLayout } from './layout.js';
import type { DomainState, MachineConfig, RunningState } from './types.js';

export type BalloonKind = 'sysfs' | 'proc' | 'none';
export type BalloonBug = 'target-not-applied' | 'runt-einval' | 'current-stuck' | 'takes-used-pages';
export const BALLOON_BUGS: readonly BalloonBug[] = ['target-not-applied', 'runt-einval', 'current-stuck', 'takes-used-pages'];

export const SYSFS_DIR = 'sys/devices/system/xen_memory/xen_memory0';
export const PROC_FILE = 'proc/xen/balloon';
export const MEMINFO_FILE = 'proc/meminfo';
const STATE = 'var/lib/simhost/balloon.json';

/** Memory the hypervisor keeps for itself, MiB (what xl info's free_memory never shows). */
export const XEN_RESERVED_MIB = 33;

// The driver writes its own files with fs's functions as they were before balloon-hook.ts patched them
// (the hook imports this module first), so that rendering a file is never taken for a write to it.
const raw = { openSync: fs.openSync, writeSync: fs.writeSync, closeSync: fs.closeSync, ftruncateSync: fs.ftruncateSync, readFileSync: fs.readFileSync };
const KERNEL_KB = 32 * 1024;
const PAGE_KB = 4;
const DEFAULT_KIB_PER_S = 262144;
const USED_CACHE_MS = 100;
const U64 = (1n << 64n) - 1n;

interface BalloonState {
  kind: BalloonKind;
  /** The simulated machine (D) and the domain's name there: for the host's free memory. */
  dir: string;
  name: string;
  initialKb: number;
  staticMaxKb: number;
  /**
   * Xen's max_pages for the domain (KiB): what it gives at most. libxl sets it to its target plus
   * LIBXL_MAXMEM_CONSTANT (1 MiB) at xl create and at every xl mem-set (seen on a real Xen 4.17.5: a
   * guest raising its own target stops there); dom0's is dom0_mem's max.
   */
  maxPagesKb: number;
  /** balloon_stats.target_pages (4 KiB pages; < 2^52, so exact in a double). */
  targetPages: number;
  /** The allocation at anchorAt (ms since the epoch); it moves toward the goal from there. */
  anchorKb: number;
  anchorAt: number;
  /** The rate the last writer's environment asked for (XENTEST_SIM_BALLOON_KIB_PER_S), or null: the reader's, or the default. */
  kibPerS: number | null;
  /** The last writer planted current-stuck. */
  stuck: boolean;
  /** memory/target and static-max are in xenstore: a guest's from its creation, dom0's from the first xl mem-set. */
  inXenstore: boolean;
  /** max_schedule_delay and max_retry_count (unsigned long, decimal). */
  maxScheduleDelay: string;
  maxRetryCount: string;
}

/** The sysfs files and their modes: a read-only one cannot be opened for writing (kernfs: EACCES). */
export const SYSFS_FILES: Record<string, 'rw' | 'ro'> = {
  target_kb: 'rw',
  target: 'rw',
  'info/current_kb': 'ro',
  'info/low_kb': 'ro',
  'info/high_kb': 'ro',
  schedule_delay: 'ro',
  retry_count: 'ro',
  max_schedule_delay: 'rw',
  max_retry_count: 'rw',
};

/** The hook every simulated domain's Node processes load (balloon-hook.ts). */
export const BALLOON_HOOK_URL = new URL('./balloon-hook.js', import.meta.url).href;

/** The environment with `--import=<the hook>` added to its NODE_OPTIONS (once; what was there stays). */
export function balloonHookEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const opt = `--import=${BALLOON_HOOK_URL}`;
  const existing = env.NODE_OPTIONS ?? '';
  return { ...env, NODE_OPTIONS: existing.split(/\s+/).includes(opt) ? existing : `${existing} ${opt}`.trim() };
}

function statePath(root: string): string {
  return path.join(root, STATE);
}

function readState(root: string): BalloonState | null {
  let text: string;
  try {
    text = raw.readFileSync(statePath(root), 'utf8') as string;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  return JSON.parse(text) as BalloonState;
}

function writeState(root: string, s: BalloonState): void {
  writeFileReplacing(statePath(root), JSON.stringify(s) + '\n');
}

/** A guest's kind follows from its kernel: XenLinux images are named vmlinuz-2.6.N-xen. */
export function balloonKindOfKernel(kernel: string | undefined): BalloonKind {
  return kernel !== undefined && /^vmlinuz-2\.6\.\d+(\.\d+)*-xen/.test(path.basename(kernel)) ? 'proc' : 'sysfs';
}

export interface BalloonInit {
  kind: BalloonKind;
  /** What the domain starts with (xl config memory, dom0_mem). */
  memoryKb: number;
  /** maxmem, or memory. */
  staticMaxKb: number;
  /** Xen's max_pages at the start (KiB); default the static maximum (dom0). */
  maxPagesKb?: number;
  /** memory/target and static-max are in xenstore from the start (a guest; dom0 only after xl mem-set). */
  inXenstore: boolean;
  /** The simulated machine's directory D, and the domain's name (Domain-0 for dom0). */
  dir: string;
  name: string;
}

function pages(kb: number): number {
  return Math.floor(kb / PAGE_KB) * PAGE_KB;
}

/**
 * A domain comes up with its whole allocation: target = current = memory.
 * Its interface files are made afresh (root-owned when the host runs as
 * root, as the kernel's are); kind 'none' has none, and no /proc/meminfo
 * from the driver when it has no memory (a machine that is not under Xen).
 */
export function initBalloon(root: string, init: BalloonInit): void {
  fs.rmSync(path.join(root, 'sys/devices/system/xen_memory'), { recursive: true, force: true });
  fs.rmSync(path.join(root, PROC_FILE), { force: true });
  fs.rmSync(path.join(root, MEMINFO_FILE), { force: true });
  if (init.kind === 'none' && init.memoryKb <= 0) {
    fs.rmSync(statePath(root), { force: true });
    return;
  }
  const kb = pages(init.memoryKb);
  const s: BalloonState = {
    kind: init.kind,
    dir: path.resolve(init.dir),
    name: init.name,
    initialKb: kb,
    staticMaxKb: pages(Math.max(init.staticMaxKb, init.memoryKb)),
    maxPagesKb: pages(init.maxPagesKb ?? Math.max(init.staticMaxKb, init.memoryKb)),
    targetPages: kb / PAGE_KB,
    anchorKb: kb,
    anchorAt: Date.now(),
    kibPerS: envRate(process.env),
    stuck: false,
    inXenstore: init.inXenstore,
    maxScheduleDelay: '32',
    maxRetryCount: '0',
  };
  fs.mkdirSync(path.dirname(statePath(root)), { recursive: true });
  writeState(root, s);
  const create = (rel: string, mode: number) => {
    const file = path.join(root, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, '');
    fs.chmodSync(file, mode);
  };
  if (s.kind === 'sysfs') for (const [name, m] of Object.entries(SYSFS_FILES)) create(path.join(SYSFS_DIR, name), m === 'rw' ? 0o644 : 0o444);
  if (s.kind === 'proc') create(PROC_FILE, 0o644);
  create(MEMINFO_FILE, 0o444);
  renderBalloon(root);
}

function envRate(env: NodeJS.ProcessEnv): number | null {
  const text = env.XENTEST_SIM_BALLOON_KIB_PER_S;
  if (text === undefined || text === '') return null;
  const v = Number(text);
  if (!Number.isFinite(v) || v < 0) throw new Error(`XENTEST_SIM_BALLOON_KIB_PER_S=${text} is not a number of KiB per second`);
  return v;
}

/**
 * KiB per ms since the last target change: the rate its writer's environment
 * set (XENTEST_SIM_BALLOON_KIB_PER_S), else this process's, else 256 MiB/s.
 */
function rateKbPerMs(s: BalloonState): number {
  return (s.kibPerS ?? envRate(process.env) ?? DEFAULT_KIB_PER_S) / 1000;
}

export function plantedBalloonBug(env: NodeJS.ProcessEnv = process.env): BalloonBug | null {
  const b = env.XENTEST_SIM_BALLOON_BUG;
  if (!b) return null;
  if (!(BALLOON_BUGS as readonly string[]).includes(b)) throw new Error(`XENTEST_SIM_BALLOON_BUG=${b} is not one of ${BALLOON_BUGS.join(', ')}`);
  return b as BalloonBug;
}

let usedCache: { at: number; rssByRoot: Map<string, number> } | null = null;

/** VmRSS (KiB) of this machine's processes by their XENTEST_ROOT, from one pass over /proc (cached briefly). */
function rssByRoot(): Map<string, number> {
  const now = Date.now();
  if (usedCache && now - usedCache.at < USED_CACHE_MS) return usedCache.rssByRoot;
  const key = Buffer.from('XENTEST_ROOT=');
  const out = new Map<string, number>();
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const env = raw.readFileSync(`/proc/${pid}/environ`) as Buffer;
      let at = env.indexOf(key);
      while (at > 0 && env[at - 1] !== 0) at = env.indexOf(key, at + 1);
      if (at < 0) continue;
      const end = env.indexOf(0, at);
      const root = path.resolve(env.toString('utf8', at + key.length, end < 0 ? env.length : end));
      const m = /^VmRSS:\s+(\d+) kB$/m.exec(raw.readFileSync(`/proc/${pid}/status`, 'utf8') as string);
      if (m) out.set(root, (out.get(root) ?? 0) + Number(m[1]));
    } catch {
      // Gone, or not ours to read.
    }
  }
  usedCache = { at: now, rssByRoot: out };
  return out;
}

/** What the domain holds: its kernel, and the resident memory of its processes. */
function usedKb(root: string): number {
  return KERNEL_KB + (rssByRoot().get(root) ?? 0);
}

interface Live {
  s: BalloonState;
  currentKb: number;
  usedKb: number;
  /** /proc's hard_limit (KiB): Xen stopped the allocation short of the target, and it got as far as Xen gives. */
  hardLimitKb: number | null;
}

function readJsonFile<T>(file: string): T | undefined {
  try {
    return JSON.parse(raw.readFileSync(file, 'utf8') as string) as T;
  } catch {
    return undefined;
  }
}

/** The running domains and the machine, when Xen runs (else null: no host limit is known). */
function hostState(dir: string): { machine: MachineConfig; domains: DomainState[] } | null {
  const layout = simLayout(dir);
  const r = readJsonFile<RunningState>(layout.running);
  const machine = readJsonFile<MachineConfig>(layout.machine);
  if (!r || !machine || r.kind !== 'xen' || !r.dom0) return null;
  return { machine, domains: [r.dom0, ...r.domains] };
}

/**
 * How far the allocation can grow: the pages in the balloon (up to the static maximum: a guest
 * started with memory below maxmem has the rest ballooned out) and no more than Xen's max_pages;
 * what the domain has is never taken back.
 */
function xenGivesUpToKb(s: BalloonState): number {
  return Math.max(s.anchorKb, Math.min(s.staticMaxKb, s.maxPagesKb ?? s.staticMaxKb));
}

/** One domain on its own: where its allocation is now within its static maximum, and what it holds in use. */
function soloLive(root: string, s: BalloonState, now: number): { currentKb: number; usedKb: number } {
  const used = usedKb(root);
  const targetKb = s.targetPages * PAGE_KB;
  // Xen gives up to the static maximum; what the domain has is never taken back.
  const high = xenGivesUpToKb(s);
  // The balloon takes only free pages: memory in use holds the allocation up (it never raises it).
  // The planted bug takes pages in use too, as a driver that does not ask the page allocator would.
  const low = plantedBalloonBug() === 'takes-used-pages' ? 0 : Math.min(pages(used), s.anchorKb);
  const goal = Math.max(low, Math.min(targetKb, high));
  const stuck = s.stuck || plantedBalloonBug() === 'current-stuck';
  const step = stuck ? 0 : Math.max(0, now - s.anchorAt) * rateKbPerMs(s);
  const d = goal - s.anchorKb;
  return { currentKb: Math.abs(d) <= step ? goal : pages(s.anchorKb + Math.sign(d) * step), usedKb: used };
}

interface HostShare {
  name: string;
  currentKb: number;
  /** Growing, it got less than it would have: the host's free memory ran out. */
  hostLimited: boolean;
}

/**
 * Every running domain's allocation at `now`, the host's free memory shared
 * out: a domain that shrinks or stays needs none; the growing ones get what
 * is free in the order they were asked to grow (the oldest request first).
 * A domain without a driver holds what the toolstack gave it. Every process
 * computes the same from the same files. `override`: the state a writer
 * holds under its lock, for its own domain.
 */
function hostShares(dir: string, machine: MachineConfig, domains: DomainState[], now: number, override?: BalloonState): HostShare[] {
  const layout = simLayout(dir);
  let free = (machine.totalMemoryMiB - XEN_RESERVED_MIB) * 1024;
  const growing: Array<{ share: HostShare; s: BalloonState; wantKb: number }> = [];
  const shares: HostShare[] = [];
  for (const d of domains) {
    const root = d.id === 0 ? layout.root : domainRoot(layout, d.name);
    const s = override?.name === d.name ? override : readState(root);
    const share: HostShare = { name: d.name, currentKb: d.memoryMiB * 1024, hostLimited: false };
    shares.push(share);
    if (!s || s.name !== d.name) {
      free -= share.currentKb;
      continue;
    }
    const solo = soloLive(root, s, now).currentKb;
    share.currentKb = Math.min(solo, s.anchorKb);
    free -= share.currentKb;
    if (solo > s.anchorKb) growing.push({ share, s, wantKb: solo - s.anchorKb });
  }
  growing.sort((x, y) => x.s.anchorAt - y.s.anchorAt || (x.share.name < y.share.name ? -1 : 1));
  for (const g of growing) {
    const give = Math.max(0, Math.min(g.wantKb, pages(free)));
    g.share.currentKb += give;
    g.share.hostLimited = give < g.wantKb;
    free -= give;
  }
  return shares;
}

/** xl info's free_memory (MiB): the host's RAM less Xen's own and what every domain holds now. */
export function hostFreeMiB(dir: string, machine: MachineConfig, domains: DomainState[]): number {
  const held = hostShares(dir, machine, domains, Date.now()).reduce((sum, x) => sum + x.currentKb, 0);
  return Math.max(0, Math.floor(((machine.totalMemoryMiB - XEN_RESERVED_MIB) * 1024 - held) / 1024));
}

/** The domain's driver now: its allocation within its static maximum and the host's free memory. */
function live(root: string, s: BalloonState, now = Date.now()): Live {
  const solo = soloLive(root, s, now);
  const h = hostState(s.dir);
  const share = h?.domains.some((d) => d.name === s.name) ? hostShares(s.dir, h.machine, h.domains, now, s).find((x) => x.name === s.name) : undefined;
  const currentKb = share ? share.currentKb : solo.currentKb;
  const targetKb = s.targetPages * PAGE_KB;
  // increase_reservation got fewer pages than asked: at the static maximum, or all the host had.
  const atStaticMax = targetKb > xenGivesUpToKb(s) && currentKb >= xenGivesUpToKb(s);
  const hardLimitKb = atStaticMax || (share?.hostLimited ?? false) ? currentKb : null;
  return { s, currentKb, usedKb: solo.usedKb, hardLimitKb };
}

/** The allocation now (KiB), for xl list; null when the domain has no model. */
export function balloonCurrentKb(root: string): number | null {
  const s = readState(root);
  return s ? live(root, s).currentKb : null;
}

/** The driver's target (KiB), null when the domain has no model. */
export function balloonTargetKb(root: string): number | null {
  const s = readState(root);
  return s ? s.targetPages * PAGE_KB : null;
}

/** xenstore's memory/target and memory/static-max (KiB), or null when the domain has none there (yet). */
export function xenstoreMemory(root: string, key: 'target' | 'static-max'): number | null {
  const s = readState(root);
  if (!s?.inXenstore) return null;
  return key === 'target' ? s.targetPages * PAGE_KB : s.staticMaxKb;
}

/** libxl writes dom0's memory keys at its first xl mem-set (libxl__fill_dom0_memory_info). */
export function enterXenstore(root: string): void {
  withFileLock(statePath(root), () => {
    const s = readState(root);
    if (s && !s.inXenstore) writeState(root, { ...s, inXenstore: true });
  });
}

/**
 * balloon_set_new_target: a new target (pages); the allocation goes on from where it is now.
 * `maxPagesKb`: what the toolstack sets Xen's max_pages to with it (xl mem-set).
 */
function setTargetPages(root: string, targetPages: number, maxPagesKb?: number): void {
  const bug = plantedBalloonBug();
  withFileLock(statePath(root), () => {
    const s = readState(root);
    if (!s) throw new Error(`${root}: no balloon driver (the domain was not started by the simulated host)`);
    const now = Date.now();
    s.anchorKb = live(root, s, now).currentKb;
    s.anchorAt = now;
    if (bug !== 'target-not-applied') s.targetPages = targetPages;
    if (maxPagesKb !== undefined) s.maxPagesKb = pages(maxPagesKb);
    s.stuck = bug === 'current-stuck';
    s.kibPerS = envRate(process.env);
    writeState(root, s);
  });
  renderBalloon(root);
}

/** libxl's LIBXL_MAXMEM_CONSTANT: max_pages is the toolstack's target plus this much (KiB). */
export const LIBXL_MAXMEM_CONSTANT_KB = 1024;

/**
 * xl mem-set (libxl_set_memory_target): Xen's max_pages to the target plus 1 MiB, then memory/target;
 * the driver's watch makes it the target (KiB >> 2).
 */
export function setTargetKb(root: string, kb: number): void {
  setTargetPages(root, Math.floor(kb / PAGE_KB), kb + LIBXL_MAXMEM_CONSTANT_KB);
}

function pad8(n: number | bigint): string {
  return String(n).padStart(8);
}

/** Every file of the domain's driver, relative to its root, as a read gives it now. */
function renderTexts(root: string, s: BalloonState): Map<string, string> {
  const l = live(root, s);
  const lowKb = Math.max(0, s.initialKb - l.currentKb);
  const free = Math.max(0, l.currentKb - l.usedKb);
  const target = BigInt(s.targetPages);
  const out = new Map<string, string>();
  if (s.kind === 'sysfs') {
    const f: Record<string, string> = {
      target_kb: `${target * 4n}\n`,
      target: `${target << 12n}\n`,
      'info/current_kb': `${l.currentKb}\n`,
      'info/low_kb': `${lowKb}\n`,
      'info/high_kb': '0\n',
      schedule_delay: '1\n',
      retry_count: '1\n',
      max_schedule_delay: `${s.maxScheduleDelay}\n`,
      max_retry_count: `${s.maxRetryCount}\n`,
    };
    for (const [name, text] of Object.entries(f)) out.set(path.join(SYSFS_DIR, name), text);
  } else if (s.kind === 'proc') {
    out.set(
      PROC_FILE,
      `Current allocation: ${pad8(l.currentKb)} kB\n` +
        `Requested target:   ${pad8(target * 4n)} kB\n` +
        `Low-mem balloon:    ${pad8(lowKb)} kB\n` +
        `High-mem balloon:   ${pad8(0)} kB\n` +
        `Driver pages:       ${pad8(0)} kB\n` +
        `Xen hard limit:     ${l.hardLimitKb !== null ? `${pad8(l.hardLimitKb)} kB\n` : '     ??? kB\n'}`,
    );
  }
  // fs/proc/meminfo.c's show_val_kb: the label padded to 16 columns, then %8lu kB.
  out.set(MEMINFO_FILE, `MemTotal:       ${pad8(l.currentKb)} kB\nMemFree:        ${pad8(free)} kB\nMemAvailable:   ${pad8(free)} kB\n`);
  return out;
}

/** What a read of interface file `rel` gives now; null when the domain has no such file. */
export function balloonFileText(root: string, rel: string): string | null {
  const s = readState(root);
  return s ? renderTexts(root, s).get(rel) ?? null : null;
}

/**
 * A descriptor to rewrite one of the driver's files, or null when this
 * process may not. Root writes a 0444 file regardless of its mode; on a host
 * run by an ordinary user, the owner lets itself write it for the moment.
 */
function openForRender(file: string): number | null {
  try {
    return raw.openSync(file, fs.constants.O_WRONLY);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES') {
      try {
        const st = fs.statSync(file);
        if (st.uid !== process.geteuid?.()) return null;
        fs.chmodSync(file, st.mode | 0o200);
        try {
          return raw.openSync(file, fs.constants.O_WRONLY);
        } finally {
          fs.chmodSync(file, st.mode & 0o7777);
        }
      } catch {
        return null;
      }
    }
    if (code === 'EPERM' || code === 'ENOENT' || code === 'EROFS') return null;
    throw e;
  }
}

/**
 * Bring every interface file (and /proc/meminfo) up to this instant, in
 * place: the file keeps its mode, owner and inode, and is never empty in
 * between. A file this process may not write is left as it is.
 */
export function renderBalloon(root: string): void {
  const s = readState(root);
  if (!s) return;
  for (const [rel, text] of renderTexts(root, s)) {
    const fd = openForRender(path.join(root, rel));
    if (fd === null) continue;
    try {
      const b = Buffer.from(text);
      raw.writeSync(fd, b, 0, b.length, 0);
      raw.ftruncateSync(fd, b.length);
    } finally {
      raw.closeSync(fd);
    }
  }
}

/**
 * The kernel's base-0 number at the start of text (_parse_integer_fixup_radix, then
 * _parse_integer): "0x" and a hex digit is hex, another leading 0 octal (the 0 is one
 * of its digits), else decimal. The value unbounded, where its digits start and end.
 */
function parseBase0(text: string): { value: bigint; start: number; end: number } {
  let i = 0;
  let base = 10n;
  if (text[0] === '0') {
    if ((text[1] === 'x' || text[1] === 'X') && /[0-9a-fA-F]/.test(text[2] ?? '')) {
      base = 16n;
      i = 2;
    } else base = 8n;
  }
  const start = i;
  let n = 0n;
  for (; i < text.length; i++) {
    const d = /[0-9a-fA-F]/.test(text[i] as string) ? parseInt(text[i] as string, 16) : NaN;
    if (Number.isNaN(d) || BigInt(d) >= base) break;
    n = n * base + BigInt(d);
  }
  return { value: n, start, end: i };
}

/** simple_strtoull(text, &end, 0) (lib/vsprintf.c): the value, wrapped to 64 bits, and where it stopped. */
export function simpleStrtoull(text: string): { value: bigint; end: number } {
  const { value, end } = parseBase0(text);
  return { value: value & U64, end };
}

const SHIFTS: Record<string, bigint> = { k: 10n, m: 20n, g: 30n, t: 40n, p: 50n, e: 60n };

/**
 * simple_strtoull base 0, then (suffixes) memparse's one suffix: 'KMGTPE'
 * for mainline lib/cmdline.c, 'KMG' for the 2.6.18 tree's. 64-bit, wrapping.
 */
export function parseKernelNumber(text: string, suffixes: boolean, suffixSet: 'KMGTPE' | 'KMG' = 'KMGTPE'): bigint {
  const { value, end } = simpleStrtoull(text);
  if (!suffixes) return value;
  const c = (text[end] ?? '').toLowerCase();
  const shift = suffixSet.toLowerCase().includes(c) && c !== '' ? SHIFTS[c] : undefined;
  return shift === undefined ? value : (value << shift) & U64;
}

/** kstrtoul(text, 0): the whole text (one trailing newline allowed) must be the number; EINVAL or ERANGE. */
export function kstrtoul(text: string): bigint | 'EINVAL' | 'ERANGE' {
  const t = text.startsWith('+') ? text.slice(1) : text;
  const { value, start, end } = parseBase0(t);
  if (end === start) return 'EINVAL';
  if (value > U64) return 'ERANGE';
  const rest = t.slice(end);
  if (rest !== '' && rest !== '\n') return 'EINVAL';
  return value;
}

export type BalloonErrno = 'EPERM' | 'EBADMSG' | 'EFBIG' | 'EINVAL' | 'ERANGE' | 'ENODEV';
export type WriteAnswer = { written: number } | { errno: BalloonErrno };

/** Which interface file a path is (relative to the domain root), or null. */
export function interfaceFile(root: string, file: string): { rel: string; writable: boolean } | null {
  const rel = path.relative(root, file);
  if (rel === PROC_FILE) return { rel, writable: true };
  if (rel.startsWith(SYSFS_DIR + '/')) {
    const mode = SYSFS_FILES[rel.slice(SYSFS_DIR.length + 1)];
    if (mode) return { rel, writable: mode === 'rw' };
  }
  return null;
}

/** The C string the kernel sees: the bytes up to the first NUL. */
function cString(bytes: Uint8Array): string {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const nul = b.indexOf(0);
  return b.toString('latin1', 0, nul < 0 ? b.length : nul);
}

/** One write(2) of `bytes` to interface file `rel`, by a caller that is capable(CAP_SYS_ADMIN) or not. */
export function writeInterface(root: string, rel: string, bytes: Uint8Array, capable: boolean): WriteAnswer {
  const s = readState(root);
  if (!s) return { errno: 'ENODEV' };
  if (rel === PROC_FILE) {
    if (!capable) return { errno: 'EPERM' };
    if (bytes.length <= 1) return { errno: plantedBalloonBug() === 'runt-einval' ? 'EINVAL' : 'EBADMSG' };
    if (bytes.length > 64) return { errno: 'EFBIG' };
    // char memstring[64]; memstring[63] = '\0'.
    const text = cString(bytes.subarray(0, 63));
    setTargetPages(root, Number(parseKernelNumber(text, true, 'KMG') >> 12n));
    return { written: bytes.length };
  }
  // kernfs hands store() at most a page, NUL-terminated; sysfs_kf_write calls no store for 0 bytes.
  const n = Math.min(bytes.length, 4096);
  if (n === 0) return { written: 0 };
  const text = cString(bytes.subarray(0, n));
  const name = rel.slice(SYSFS_DIR.length + 1);
  if (name === 'target_kb' || name === 'target') {
    if (!capable) return { errno: 'EPERM' };
    const targetBytes = name === 'target_kb' ? (parseKernelNumber(text, false) * 1024n) & U64 : parseKernelNumber(text, true);
    setTargetPages(root, Number(targetBytes >> 12n));
    return { written: n };
  }
  if (name === 'max_schedule_delay' || name === 'max_retry_count') {
    const v = kstrtoul(text);
    if (typeof v === 'string') return { errno: v };
    withFileLock(statePath(root), () => {
      const t = readState(root);
      if (!t) return;
      if (name === 'max_schedule_delay') t.maxScheduleDelay = String(v);
      else t.maxRetryCount = String(v);
      writeState(root, t);
    });
    renderBalloon(root);
    return { written: n };
  }
  // A read-only file cannot be open for writing (the hook refuses the open).
  return { errno: 'EPERM' };
}
