/**
 * The simulated host's balloon driver: one per domain, behind the files a
 * real kernel has, with the real kernel's rules.
 *
 * - kind 'sysfs', mainline Linux (drivers/xen/xen-balloon.c): xen_memory0's
 *   target_kb (simple_strtoull base 0, x 1024), target (memparse), both
 *   needing CAP_SYS_ADMIN (EPERM) and nothing else: garbage is 0;
 *   info/current_kb, info/low_kb, info/high_kb.
 * - kind 'proc', XenLinux 2.6.18-xen (drivers/xen/balloon/balloon.c):
 *   /proc/xen/balloon, written after CAP_SYS_ADMIN (EPERM), count <= 1
 *   (EBADMSG) and count > 64 (EFBIG), in that order, into char[64] with the
 *   last byte zeroed, then memparse; read as its balloon_read sprintf()s.
 * - memparse and simple_strtoull as lib/cmdline.c and lib/vsprintf.c: base
 *   0 (0x hex, 0 octal), no whitespace skipped, K M G T P E suffixes, 64-bit
 *   wrap.
 * - The allocation follows the target at XENTEST_SIM_BALLOON_KIB_PER_S
 *   (default 256 MiB/s), never below what the domain's processes hold
 *   (32 MiB for the kernel plus the resident memory of every process whose
 *   XENTEST_ROOT is the domain's root: Linux's balloon allocates with
 *   __GFP_NORETRY and gives up rather than take memory in use), never above
 *   the static maximum (Xen refuses the pages); the /proc "Xen hard limit"
 *   shows the allocation Xen stopped it at.
 * - `xl mem-set` (libxl_mem.c) writes memory/target; the driver follows it
 *   the same way (setTargetKb).
 *
 * State is <root>/var/lib/simhost/balloon.json, replaced atomically; the
 * interface files hold what a read gave at the last change, and a read
 * through the hook (balloon-hook.ts) renders them at that instant.
 */
import fs from 'node:fs';
import path from 'node:path';
import { withFileLock, writeFileReplacing } from './fsutil.js';

export type BalloonKind = 'sysfs' | 'proc' | 'none';
export type BalloonBug = 'target-not-applied' | 'runt-einval' | 'current-stuck';
export const BALLOON_BUGS: readonly BalloonBug[] = ['target-not-applied', 'runt-einval', 'current-stuck'];

export const SYSFS_DIR = 'sys/devices/system/xen_memory/xen_memory0';
export const PROC_FILE = 'proc/xen/balloon';
const STATE = 'var/lib/simhost/balloon.json';
// The driver writes its own files with fs's functions as they were before balloon-hook.ts patched them
// (it imports this module first), so that rendering a file is never taken for a write to it.
const raw = { openSync: fs.openSync, writeSync: fs.writeSync, closeSync: fs.closeSync };
const KERNEL_KB = 32 * 1024;
const PAGE_KB = 4;

interface BalloonState {
  kind: BalloonKind;
  initialKb: number;
  staticMaxKb: number;
  targetKb: number;
  /** The allocation at anchorAt (ms since the epoch); it moves toward the goal from there. */
  anchorKb: number;
  anchorAt: number;
}

/** The sysfs files and whether a write may open them. */
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

/** The environment's NODE_OPTIONS with the hook added (once). */
export function balloonHookEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const opt = `--import=${BALLOON_HOOK_URL}`;
  const existing = env.NODE_OPTIONS ?? '';
  return { ...env, NODE_OPTIONS: existing.includes(opt) ? existing : `${existing} ${opt}`.trim() };
}

function statePath(root: string): string {
  return path.join(root, STATE);
}

function readState(root: string): BalloonState | null {
  try {
    return JSON.parse(fs.readFileSync(statePath(root), 'utf8')) as BalloonState;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

function writeState(root: string, s: BalloonState): void {
  fs.mkdirSync(path.dirname(statePath(root)), { recursive: true });
  writeFileReplacing(statePath(root), JSON.stringify(s) + '\n');
}

/** A guest's kind follows from its kernel: XenLinux images are named vmlinuz-2.6.N-xen. */
export function balloonKindOfKernel(kernel: string | undefined): BalloonKind {
  return kernel !== undefined && /^vmlinuz-2\.6\.\d+(\.\d+)*-xen/.test(path.basename(kernel)) ? 'proc' : 'sysfs';
}

/** A domain comes up with its whole allocation: target = current = memory. */
export function initBalloon(root: string, kind: BalloonKind, memoryKb: number, staticMaxKb: number): void {
  fs.rmSync(path.join(root, 'sys/devices/system/xen_memory'), { recursive: true, force: true });
  fs.rmSync(path.join(root, PROC_FILE), { force: true });
  if (kind === 'none') {
    fs.rmSync(statePath(root), { force: true });
    return;
  }
  const kb = pages(memoryKb);
  writeState(root, { kind, initialKb: kb, staticMaxKb: pages(Math.max(staticMaxKb, memoryKb)), targetKb: kb, anchorKb: kb, anchorAt: Date.now() });
  if (kind === 'sysfs') {
    for (const [name, mode] of Object.entries(SYSFS_FILES)) {
      const file = path.join(root, SYSFS_DIR, name);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, '');
      fs.chmodSync(file, mode === 'rw' ? 0o644 : 0o444);
    }
  } else if (kind === 'proc') {
    fs.mkdirSync(path.join(root, 'proc/xen'), { recursive: true });
    fs.writeFileSync(path.join(root, PROC_FILE), '');
    fs.chmodSync(path.join(root, PROC_FILE), 0o644);
  }
  renderBalloon(root);
}

function pages(kb: number): number {
  return Math.floor(kb / PAGE_KB) * PAGE_KB;
}

function rateKbPerMs(): number {
  const v = Number(process.env.XENTEST_SIM_BALLOON_KIB_PER_S ?? 262144);
  return (Number.isFinite(v) && v >= 0 ? v : 262144) / 1000;
}

export function plantedBalloonBug(env: NodeJS.ProcessEnv = process.env): BalloonBug | null {
  const b = env.XENTEST_SIM_BALLOON_BUG;
  if (!b) return null;
  if (!(BALLOON_BUGS as readonly string[]).includes(b)) throw new Error(`XENTEST_SIM_BALLOON_BUG=${b} is not one of ${BALLOON_BUGS.join(', ')}`);
  return b as BalloonBug;
}

let usedCache: { root: string; at: number; kb: number } | null = null;

/** What the domain holds: the kernel, and the resident memory of its processes. */
function usedKb(root: string): number {
  const now = Date.now();
  if (usedCache && usedCache.root === root && now - usedCache.at < 50) return usedCache.kb;
  const marker = Buffer.from(`\0XENTEST_ROOT=${root}\0`);
  let rss = 0;
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const env = Buffer.concat([Buffer.from([0]), fs.readFileSync(`/proc/${pid}/environ`), Buffer.from([0])]);
      if (env.indexOf(marker) < 0) continue;
      const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) rss += Number(m[1]);
    } catch {
      // Gone, or not ours to read.
    }
  }
  const kb = KERNEL_KB + rss;
  usedCache = { root, at: now, kb };
  return kb;
}

interface Live {
  s: BalloonState;
  currentKb: number;
  used: number;
  /** Xen stopped the allocation short of the target. */
  capped: boolean;
}

function live(root: string, s: BalloonState, now = Date.now()): Live {
  const used = usedKb(root);
  // Memory in use holds the allocation up (the balloon takes only free pages); it never raises it.
  const goal = Math.min(s.staticMaxKb, Math.max(s.targetKb, Math.min(pages(used), s.anchorKb)));
  const stuck = plantedBalloonBug() === 'current-stuck';
  const step = stuck ? 0 : (now - s.anchorAt) * rateKbPerMs();
  const d = goal - s.anchorKb;
  const currentKb = pages(Math.abs(d) <= step ? goal : s.anchorKb + Math.sign(d) * step);
  return { s, currentKb, used, capped: s.targetKb > s.staticMaxKb && currentKb >= s.staticMaxKb };
}

/** The allocation now (KiB), for xl list; null when the domain has no model. */
export function balloonCurrentKb(root: string): number | null {
  const s = readState(root);
  return s ? live(root, s).currentKb : null;
}

export function balloonTargetKb(root: string): number | null {
  return readState(root)?.targetKb ?? null;
}

export function balloonStaticMaxKb(root: string): number | null {
  return readState(root)?.staticMaxKb ?? null;
}

/** A new target (KiB): the allocation goes on from where it is now. */
export function setTargetKb(root: string, kb: number): void {
  // dom0's xl mem-set and the guest's own writes may come at once.
  withFileLock(statePath(root), () => {
    const s = readState(root);
    if (!s) throw new Error(`${root}: no balloon driver (the domain was not started by the simulated host)`);
    const now = Date.now();
    const l = live(root, s, now);
    s.anchorKb = l.currentKb;
    s.anchorAt = now;
    if (plantedBalloonBug() !== 'target-not-applied') s.targetKb = pages(kb);
    writeState(root, s);
  });
  renderBalloon(root);
}

function pad8(n: number): string {
  return String(n).padStart(8);
}

/** Write every interface file (and /proc/meminfo) as a read would give them now. */
export function renderBalloon(root: string): void {
  const s = readState(root);
  if (!s) return;
  const l = live(root, s);
  const lowKb = Math.max(0, s.initialKb - l.currentKb);
  const free = Math.max(0, l.currentKb - l.used);
  const put = (rel: string, text: string) => {
    // Truncated in place: the file keeps its mode, owner and inode.
    const fd = raw.openSync(path.join(root, rel), 'w');
    try {
      raw.writeSync(fd, text);
    } finally {
      raw.closeSync(fd);
    }
  };
  if (s.kind === 'sysfs') {
    const f: Record<string, string> = {
      target_kb: `${s.targetKb}\n`,
      target: `${BigInt(s.targetKb) * 1024n}\n`,
      'info/current_kb': `${l.currentKb}\n`,
      'info/low_kb': `${lowKb}\n`,
      'info/high_kb': '0\n',
      schedule_delay: '1\n',
      retry_count: '1\n',
      max_schedule_delay: '32\n',
      max_retry_count: '0\n',
    };
    for (const [name, text] of Object.entries(f)) put(path.join(SYSFS_DIR, name), text);
  } else if (s.kind === 'proc') {
    put(
      PROC_FILE,
      `Current allocation: ${pad8(l.currentKb)} kB\n` +
        `Requested target:   ${pad8(s.targetKb)} kB\n` +
        `Low-mem balloon:    ${pad8(lowKb)} kB\n` +
        `High-mem balloon:   ${pad8(0)} kB\n` +
        `Driver pages:       ${pad8(0)} kB\n` +
        `Xen hard limit:     ${l.capped ? `${pad8(l.currentKb)} kB\n` : '     ??? kB\n'}`,
    );
  }
  fs.mkdirSync(path.join(root, 'proc'), { recursive: true });
  put('proc/meminfo', `MemTotal:       ${pad8(l.currentKb)} kB\nMemFree:        ${pad8(free)} kB\nMemAvailable:   ${pad8(free)} kB\n`);
}

/** simple_strtoull(s, &end, 0) then memparse's suffix when `suffixes`: 64-bit, wrapping. */
export function parseKernelNumber(text: string, suffixes: boolean): bigint {
  let i = 0;
  let base = 10n;
  if (text[0] === '0') {
    if ((text[1] === 'x' || text[1] === 'X') && /[0-9a-fA-F]/.test(text[2] ?? '')) {
      base = 16n;
      i = 2;
    } else base = 8n;
  }
  let n = 0n;
  for (; i < text.length; i++) {
    const d = parseInt(text[i] as string, 16);
    if (Number.isNaN(d) || BigInt(d) >= base) break;
    n = (n * base + BigInt(d)) & 0xffffffffffffffffn;
  }
  if (suffixes) {
    const shift = { k: 10n, m: 20n, g: 30n, t: 40n, p: 50n, e: 60n }[(text[i] ?? '').toLowerCase()];
    if (shift !== undefined) n = (n << shift) & 0xffffffffffffffffn;
  }
  return n;
}

export type WriteAnswer = { written: number } | { errno: 'EPERM' | 'EBADMSG' | 'EFBIG' | 'EINVAL' | 'EACCES' };

/** Which interface file a path is, relative to the domain root, or null. */
export function interfaceFile(root: string, file: string): { rel: string; writable: boolean } | null {
  const rel = path.relative(root, file);
  if (rel === PROC_FILE) return { rel, writable: true };
  if (rel.startsWith(SYSFS_DIR + '/')) {
    const mode = SYSFS_FILES[rel.slice(SYSFS_DIR.length + 1)];
    if (mode) return { rel, writable: mode === 'rw' };
  }
  return null;
}

/** One write(2) of `bytes` to interface file `rel`, by a caller that is capable(CAP_SYS_ADMIN) or not. */
export function writeInterface(root: string, rel: string, bytes: Uint8Array, capable: boolean): WriteAnswer {
  const s = readState(root);
  if (!s) return { errno: 'EACCES' };
  if (!capable) return { errno: 'EPERM' };
  if (rel === PROC_FILE) {
    if (bytes.length <= 1) return { errno: plantedBalloonBug() === 'runt-einval' ? 'EINVAL' : 'EBADMSG' };
    if (bytes.length > 64) return { errno: 'EFBIG' };
    const text = Buffer.from(bytes.subarray(0, 63)).toString('latin1').split('\0')[0] as string;
    setTargetKb(root, Number((parseKernelNumber(text, true) >> 12n) * 4n));
    return { written: bytes.length };
  }
  // kernfs hands store() at most a page.
  const n = Math.min(bytes.length, 4096);
  const text = Buffer.from(bytes.subarray(0, n)).toString('latin1').split('\0')[0] as string;
  const name = rel.slice(SYSFS_DIR.length + 1);
  if (name === 'target_kb') setTargetKb(root, Number(((parseKernelNumber(text, false) * 1024n) >> 12n) * 4n));
  else if (name === 'target') setTargetKb(root, Number((parseKernelNumber(text, true) >> 12n) * 4n));
  return { written: n };
}
