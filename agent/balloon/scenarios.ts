/**
 * The balloon scenarios of the Xentest paper (section 3.2), each with what
 * every interface must do. A scenario that means nothing for an interface
 * (a byte count for a command) is TEST_NA with the reason, never a pass.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describeOutcome, type InterfaceName, type WriteOutcome } from './interface.js';
import { fail, good, na, type ScenarioResult, type SuiteContext } from './context.js';
import { memAvailableKb } from './meminfo.js';
import { ProcBalloon } from './proc.js';
import { SysfsBalloon } from './sysfs.js';
import { XlBalloon } from './xl.js';

export interface Scenario {
  name: string;
  summary: string;
  /** What each interface must do: the documented outcome. */
  expected: Record<InterfaceName, string>;
  run(ctx: SuiteContext): Promise<ScenarioResult>;
}

const MiB = 1024;

function kb(n: number): string {
  return `${n} kB`;
}

/** The target right after a request: the driver sets it at once. */
async function targetIs(ctx: SuiteContext, want: number, what: string): Promise<ScenarioResult | null> {
  const r = await ctx.iface.read();
  return r.targetKb === want ? null : fail(`${what}: expected the target to read ${kb(want)}, it reads ${kb(r.targetKb)}`);
}

function accepted(o: WriteOutcome, what: string): ScenarioResult | null {
  return o.ok ? null : fail(`${what}: expected it accepted, got ${describeOutcome(o)}`);
}

const readState: Scenario = {
  name: 'read-state',
  summary: 'read the current allocation and the target',
  expected: {
    proc: 'every line of /proc/xen/balloon reads as "Label: N kB" (Xen hard limit may be ??? kB); allocation and target are above 0',
    sysfs: 'target_kb, target, info/current_kb, info/low_kb and info/high_kb hold numbers; target is target_kb x 1024',
    xl: 'xl list shows the domain with its memory and xenstore holds its memory/target',
  },
  async run(ctx) {
    const r = await ctx.iface.read();
    if (r.currentKb <= 0 || r.targetKb <= 0) return fail(`expected an allocation and a target above 0, read ${kb(r.currentKb)} and ${kb(r.targetKb)}`);
    const i = ctx.iface;
    if (i instanceof SysfsBalloon) {
      const bytes = i.readNumber('target');
      if (bytes !== r.targetKb * 1024) return fail(`expected target (${bytes}) to be target_kb x 1024 (${r.targetKb * 1024})`);
      const low = i.readNumber('info/low_kb');
      const high = i.readNumber('info/high_kb');
      return good(`allocation ${kb(r.currentKb)}, target ${kb(r.targetKb)} (= ${bytes} bytes), in the balloon ${kb(low)} low, ${kb(high)} high`);
    }
    if (i instanceof ProcBalloon) {
      const t = i.readText();
      return good(`allocation ${kb(t.currentKb)}, target ${kb(t.targetKb)}, balloon ${kb(t.lowKb)} low, ${kb(t.highKb)} high, Xen hard limit ${t.hardLimitKb === null ? '???' : kb(t.hardLimitKb)}`);
    }
    return good(`allocation ${kb(r.currentKb)} (xl list), target ${kb(r.targetKb)} (xenstore)`);
  },
};

const raiseTarget: Scenario = {
  name: 'raise-target',
  summary: 'ask for more than the domain has; the requested target changes',
  expected: {
    proc: 'the requested target reads the new value at once; the allocation grows toward it, never past it, as far as Xen gives: within static-max and max_pages, which the toolstack keeps at its own target + 1 MiB (only xl mem-set raises it)',
    sysfs: 'target_kb reads the new value at once; info/current_kb grows toward it, never past it, as far as Xen gives (as proc)',
    xl: 'with headroom under static-max: accepted, memory/target changes and xl list follows; with none, TEST_NA (above-host-ram covers the refusal)',
  },
  async run(ctx) {
    const o = ctx.original;
    let want = o.targetKb + 64 * MiB;
    if (ctx.iface.name === 'xl') {
      const max = ctx.staticMaxKb;
      if (max === null) return na('the static maximum cannot be read (xenstore-read memory/static-max), so a higher target cannot be chosen that xl must accept');
      if (max <= o.targetKb) return na(`no headroom: static-max ${kb(max)} is not above the target ${kb(o.targetKb)}, and xl refuses anything higher`);
      want = Math.min(want, max);
    }
    const w = await ctx.set(want);
    const bad = accepted(w, `a target of ${kb(want)}`) ?? (await targetIs(ctx, want, `after asking for ${kb(want)}`));
    if (bad) return bad;
    const limits = [ctx.staticMaxKb, ctx.xenLimitKb].filter((x): x is number => x !== null);
    const cap = Math.max(o.currentKb, Math.min(want, ...limits));
    const s = await ctx.settle(cap);
    if (s.reading.currentKb > want + ctx.toleranceKb) return fail(`expected the allocation never to pass the target ${kb(want)}, it is ${kb(s.reading.currentKb)}`);
    const why = cap >= want ? 'the target' : ctx.xenLimitKb !== null && ctx.xenLimitKb <= (ctx.staticMaxKb ?? Infinity) ? `what Xen gives: the toolstack's target + 1 MiB, ${kb(ctx.xenLimitKb)}` : `the target, within static-max ${kb(ctx.staticMaxKb!)}`;
    if (limits.length > 0 && !s.reached) return fail(`expected the allocation to reach ${kb(cap)} (${why}), it stopped at ${kb(s.reading.currentKb)}`);
    if (s.reading.currentKb > cap + ctx.toleranceKb) return fail(`expected the allocation to stop at ${kb(cap)} (${why}), it is ${kb(s.reading.currentKb)}`);
    return good(`target ${kb(o.targetKb)} -> ${kb(want)}; allocation ${kb(o.currentKb)} -> ${kb(s.reading.currentKb)}${cap < want ? ` (${why})` : ''}`);
  },
};

const lowerTarget: Scenario = {
  name: 'lower-target',
  summary: 'ask for less than the domain has; target and allocation follow',
  expected: {
    proc: 'the requested target reads the new value at once and the current allocation follows it down',
    sysfs: 'target_kb reads the new value at once and info/current_kb follows it down',
    xl: 'accepted; memory/target changes and xl list shows the domain shrink to it',
  },
  async run(ctx) {
    const o = ctx.original;
    const room = o.targetKb - ctx.floorKb;
    if (room < 16 * MiB) return na(`the target ${kb(o.targetKb)} is within 16 MiB of the floor ${kb(ctx.floorKb)}: no room to lower it (lower --floor)`);
    const want = o.targetKb - Math.min(64 * MiB, Math.floor(room / 2 / 4) * 4);
    const w = await ctx.set(want);
    const bad = accepted(w, `a target of ${kb(want)}`) ?? (await targetIs(ctx, want, `after asking for ${kb(want)}`));
    if (bad) return bad;
    const s = await ctx.settle(want);
    if (!s.reached) return fail(`expected the allocation to follow the target down to ${kb(want)} within ${ctx.options.settleMs / 1000} s, it is ${kb(s.reading.currentKb)}`);
    return good(`target and allocation ${kb(o.currentKb)} -> ${kb(s.reading.currentKb)}`);
  },
};

const HOG = fileURLToPath(new URL('./hog.js', import.meta.url));

/** Start the allocation; resolves once it holds the memory. */
function startHog(sizeKb: number): Promise<{ kill: () => void; alive: () => boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [HOG, String(sizeKb)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let exited = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the allocation of ${kb(sizeKb)} did not finish within 60 s`));
    }, 60_000);
    child.on('exit', (code, signal) => {
      exited = true;
      clearTimeout(timer);
      reject(new Error(`the allocation of ${kb(sizeKb)} ended before it was ready (${signal ?? `exit ${code}`})`));
    });
    child.stdout.on('data', (d: Buffer) => {
      if (!d.toString().startsWith('ready')) return;
      clearTimeout(timer);
      resolve({ kill: () => child.kill('SIGKILL'), alive: () => !exited && child.exitCode === null && child.signalCode === null });
    });
  });
}

const allocateThenLower: Scenario = {
  name: 'allocate-then-lower',
  summary: 'allocate nearly all memory in the domain, then lower the target below what is allocated',
  expected: {
    proc: 'the target reads the new value; the allocation stops above it, at what the domain holds; the allocating process lives (the balloon takes only free pages)',
    sysfs: 'the same: target_kb reads the new value, info/current_kb stops at what the domain holds, the allocating process lives',
    xl: 'from dom0 against itself the same; against a guest TEST_NA (the memory must be allocated inside the guest: run the suite there)',
  },
  async run(ctx) {
    if (!ctx.iface.ownDomain) return na(`${ctx.iface.where} acts on another domain; the allocation must be made inside it (run the suite in that domain)`);
    const available = memAvailableKb(ctx.options.root);
    // The allocating process's own runtime (a Node process, some 50 MiB) comes on top: keep 112 MiB free.
    const size = available - 112 * MiB;
    if (size < 32 * MiB) return na(`only ${kb(available)} available: not enough to allocate nearly all of it and keep a margin`);
    const hog = await startHog(size);
    try {
      const before = await ctx.iface.read();
      const inUse = before.currentKb - memAvailableKb(ctx.options.root);
      const want = Math.max(ctx.floorKb, Math.floor((inUse - size / 2) / 4) * 4);
      if (want >= inUse - 8 * MiB) return na(`the floor ${kb(ctx.floorKb)} is not below what the domain holds (${kb(inUse)}): the target cannot go under the allocation`);
      const w = await ctx.set(want);
      const bad = accepted(w, `a target of ${kb(want)}`) ?? (await targetIs(ctx, want, `after asking for ${kb(want)}`));
      if (bad) return bad;
      const s = await ctx.settle(want);
      if (!hog.alive()) return fail(`the allocating process died when the target went below what the domain holds (the balloon must take only free pages)`);
      // What the allocating process holds cannot be taken; the rest of what was in use can come and go
      // (other processes exit, a runtime's heap shrinks), so it is no bound.
      if (s.reading.currentKb < size) return fail(`expected the allocation to stay above what the allocating process holds (${kb(size)}; the domain held ${kb(inUse)}), it fell to ${kb(s.reading.currentKb)}`);
      if (s.reading.currentKb <= want) return fail(`expected the allocation to stop above the target ${kb(want)} (the domain holds ${kb(inUse)}), it is ${kb(s.reading.currentKb)}`);
      return good(`held ${kb(size)}; target ${kb(want)}; allocation stopped at ${kb(s.reading.currentKb)} (in use ${kb(inUse)}), the allocation survived`);
    } finally {
      hog.kill();
    }
  },
};

const aboveHostRam: Scenario = {
  name: 'above-host-ram',
  summary: "ask for more than the host's RAM",
  expected: {
    proc: 'accepted: the requested target reads it; the allocation grows only as far as Xen gives (static-max, max_pages) and "Xen hard limit" then shows that allocation',
    sysfs: 'accepted: target_kb reads it; info/current_kb grows only as far as Xen gives (static-max, max_pages)',
    xl: 'refused, exit 1: libxl says "memory_dynamic_max must be less than or equal to memory_static_max"; memory/target unchanged',
  },
  async run(ctx) {
    const o = ctx.original;
    // In a guest the host's size cannot be known: 1 TiB is more than these machines have.
    const host = ctx.options.hostRamKb;
    const want = host === null ? 1024 * 1024 * MiB : host + 1024 * MiB;
    const w = await ctx.set(want);
    if (ctx.iface.name === 'xl') {
      if (w.ok) return fail(`expected xl to refuse a target of ${kb(want)} (above static-max), it accepted it`);
      if (!/memory_dynamic_max must be less than or equal to memory_static_max/.test(w.message)) return fail(`expected libxl's "memory_dynamic_max must be less than or equal to memory_static_max", xl said: ${w.message}`);
      return (await targetIs(ctx, o.targetKb, 'after the refused request')) ?? good(`refused (${w.message}); target still ${kb(o.targetKb)}`);
    }
    const bad = accepted(w, `a target of ${kb(want)}`) ?? (await targetIs(ctx, want, `after asking for ${kb(want)}`));
    if (bad) return bad;
    const s = await ctx.settle(want);
    const r = s.reading;
    if (ctx.staticMaxKb !== null && r.currentKb > ctx.staticMaxKb + ctx.toleranceKb) return fail(`expected the allocation to stop at static-max ${kb(ctx.staticMaxKb)}, it is ${kb(r.currentKb)}`);
    if (ctx.xenLimitKb !== null && r.currentKb > Math.max(o.currentKb, ctx.xenLimitKb) + ctx.toleranceKb) return fail(`expected the allocation to stop where Xen stops giving (${kb(ctx.xenLimitKb)}: the toolstack's target + 1 MiB), it is ${kb(r.currentKb)}`);
    if (s.reached) return fail(`expected Xen not to give ${kb(want)}, the allocation reached it`);
    if (ctx.iface.name === 'proc' && r.hardLimitKb === null) return fail(`expected "Xen hard limit" to show the allocation Xen stopped at (${kb(r.currentKb)}), it shows ??? kB`);
    return good(`target ${kb(want)} accepted; allocation stopped at ${kb(r.currentKb)}${r.hardLimitKb !== null ? `, Xen hard limit ${kb(r.hardLimitKb)}` : ''}`);
  },
};

const tooLow: Scenario = {
  name: 'too-low',
  summary: 'ask for a target far too low: 4 KiB',
  expected: {
    proc: 'below the floor: TEST_NA (the driver does not refuse it). With --floor 0: accepted, the requested target reads 4 kB, the allocation falls but stays at what the domain holds',
    sysfs: 'the same as proc, through target_kb',
    xl: 'dom0: refused, exit 1: libxl says "New target 4 for dom0 is below the minimum threshold". A guest: as proc (xl does not refuse it)',
  },
  async run(ctx) {
    const want = 4;
    const dom0Xl = ctx.iface instanceof XlBalloon && ctx.iface.ownDomain;
    if (dom0Xl) {
      const w = await ctx.set(want, { refusalExpected: true });
      if (w.ok) return fail(`expected libxl to refuse a dom0 target of 4 kB (below its 128 MiB minimum), xl accepted it`);
      if (!/below the minimum threshold/.test(w.message)) return fail(`expected libxl's "below the minimum threshold", xl said: ${w.message}`);
      return (await targetIs(ctx, ctx.original.targetKb, 'after the refused request')) ?? good(`refused (${w.message})`);
    }
    if (want < ctx.floorKb) return na(`a 4 kB target is below the floor (${kb(ctx.floorKb)}) and ${ctx.iface.where} does not refuse it; run with --floor 0 on a domain you can spare`);
    const w = await ctx.set(want);
    const bad = accepted(w, 'a target of 4 kB') ?? (await targetIs(ctx, want, 'after asking for 4 kB'));
    if (bad) return bad;
    const s = await ctx.settle(want);
    if (s.reached) return fail('expected the allocation to stop at what the domain holds, it reached 4 kB');
    return good(`target 4 kB accepted; the allocation stopped at ${kb(s.reading.currentKb)}`);
  },
};

const nonRoot: Scenario = {
  name: 'non-root-write',
  summary: 'write a target as an unprivileged user',
  expected: {
    proc: 'user nobody: EACCES at open (the file is 0644 root); root without CAP_SYS_ADMIN: EPERM at write (the paper\'s EPERM); the target unchanged',
    sysfs: 'the same for target_kb: EACCES at open for nobody, EPERM at write without CAP_SYS_ADMIN; the target unchanged',
    xl: 'user nobody: xl fails ("cannot init xl context": libxl cannot open /dev/xen/privcmd; or xl is not even executable for it); memory/target unchanged',
  },
  async run(ctx) {
    if (!ctx.options.canSwitchUser) return na('the suite is not root (or setpriv is missing): it cannot run a writer as another user');
    // The value written is the target itself: harmless if a broken driver took it.
    const same = ctx.original.targetKb;
    const asNobody = await ctx.set(same, { as: 'nobody' });
    if (ctx.iface.name === 'xl') {
      if (asNobody.ok) return fail('expected xl mem-set as user nobody to fail, it succeeded');
      return (await targetIs(ctx, same, 'after xl as nobody')) ?? good(`as nobody: ${describeOutcome(asNobody)}`);
    }
    if (asNobody.ok || asNobody.code !== 'EACCES' || asNobody.at !== 'open') return fail(`as user nobody: expected EACCES at open, got ${describeOutcome(asNobody)}`);
    const noCap = await ctx.set(same, { as: 'no-cap-sys-admin' });
    if (noCap.ok || noCap.code !== 'EPERM' || noCap.at !== 'write') return fail(`as root without CAP_SYS_ADMIN: expected EPERM at write, got ${describeOutcome(noCap)}`);
    return (await targetIs(ctx, same, 'after the refused writes')) ?? good('nobody: EACCES at open; without CAP_SYS_ADMIN: EPERM at write');
  },
};

/** Put the target back at once if a write that had to be refused was taken. */
async function takenBack(ctx: SuiteContext, what: string): Promise<ScenarioResult | null> {
  const r = await ctx.iface.read();
  if (r.targetKb === ctx.original.targetKb) return null;
  await ctx.restore();
  return fail(`${what} changed the target to ${kb(r.targetKb)} (put back to ${kb(ctx.original.targetKb)})`);
}

const oneByte: Scenario = {
  name: 'one-byte-write',
  summary: 'write 1 byte to the target',
  expected: {
    proc: 'EBADMSG at write (a runt: 1 byte or less); the target unchanged',
    sysfs: 'TEST_NA: sysfs has no length check, so any 1 byte is a target of at most 9 kB (a digit) or 0 (anything else), garbage to a live target',
    xl: 'TEST_NA: xl mem-set takes a size argument, not a write',
  },
  async run(ctx) {
    const i = ctx.iface;
    if (i instanceof XlBalloon) return na('xl mem-set takes a size argument, not a write: there is no byte count');
    if (i instanceof SysfsBalloon) return na('sysfs has no length check: any 1-byte write is a target of at most 9 kB or 0, garbage the suite never writes to a live target');
    const o = await i.writeBytes!(Buffer.from('\n'));
    const taken = await takenBack(ctx, 'the 1-byte write');
    if (o.ok || o.code !== 'EBADMSG') return fail(`expected EBADMSG, got ${describeOutcome(o)}${taken ? `; ${taken.reason}` : ''}`);
    return taken ?? good('EBADMSG');
  },
};

/** A well-formed request for the current target, padded with spaces to `length` bytes. */
function padded(text: string, length: number): Buffer {
  return Buffer.from(text.padEnd(length - 1, ' ') + '\n');
}

const overLong: Scenario = {
  name: 'long-write',
  summary: 'write more than 64 bytes to the target',
  expected: {
    proc: '65 bytes: EFBIG at write, the target unchanged; 64 bytes: accepted (the limit is the 64-byte buffer)',
    sysfs: 'accepted: no length limit (a valid target padded to 100 bytes is read as that target)',
    xl: 'TEST_NA: xl mem-set takes a size argument, not a write',
  },
  async run(ctx) {
    const i = ctx.iface;
    const same = ctx.original.targetKb;
    if (i instanceof XlBalloon) return na('xl mem-set takes a size argument, not a write: there is no byte count');
    if (i instanceof SysfsBalloon) {
      const o = await i.writeBytes(padded(String(same), 100));
      return accepted(o, 'a 100-byte write of the target') ?? (await targetIs(ctx, same, 'after the 100-byte write')) ?? good(`accepted (${describeOutcome(o)}), target ${kb(same)}`);
    }
    // The text is the target itself: harmless if a broken driver took it.
    const long = await i.writeBytes!(padded(`${same}K`, 65));
    const taken = await takenBack(ctx, 'the 65-byte write');
    if (long.ok || long.code !== 'EFBIG') return fail(`65 bytes: expected EFBIG, got ${describeOutcome(long)}${taken ? `; ${taken.reason}` : ''}`);
    if (taken) return taken;
    const limit = await i.writeBytes!(padded(`${same}K`, 64));
    return accepted(limit, 'a 64-byte write') ?? (await targetIs(ctx, same, 'after the 64-byte write')) ?? good('65 bytes: EFBIG; 64 bytes: accepted');
  },
};

const rapid: Scenario = {
  name: 'rapid-targets',
  summary: 'write random targets as fast as the interface takes them',
  expected: {
    proc: 'every write accepted and read back at once; afterwards the original target is back and the allocation returns to it',
    sysfs: 'the same through target_kb',
    xl: 'the same through xl mem-set (each a command, so fewer per second)',
  },
  async run(ctx) {
    const o = ctx.original;
    const lowest = ctx.floorKb;
    const highest = ctx.staticMaxKb === null ? o.targetKb : Math.max(o.targetKb, Math.min(ctx.staticMaxKb, o.targetKb + 64 * MiB));
    if (highest - lowest < 4) return na(`no room between the floor ${kb(lowest)} and ${kb(highest)}`);
    const pages = Math.floor((highest - lowest) / 4);
    const start = Date.now();
    let n = 0;
    while (n < ctx.options.rapidCount && Date.now() - start < ctx.options.rapidMs) {
      const want = lowest + 4 * ctx.rng.below(Math.min(pages, 1 << 21));
      const w = await ctx.set(want);
      const bad = accepted(w, `write ${n + 1} (${kb(want)})`) ?? (await targetIs(ctx, want, `write ${n + 1}`));
      if (bad) return bad;
      n += 1;
    }
    const back = await ctx.restore();
    if (back) return back;
    const s = await ctx.settle(o.targetKb, 2000);
    if (!s.reached) return fail(`after ${n} writes the target is back at ${kb(o.targetKb)}, but the allocation stayed at ${kb(s.reading.currentKb)}`);
    const secs = (Date.now() - start) / 1000;
    return good(`${n} random targets in ${secs.toFixed(1)} s (seed ${ctx.options.seed}), each read back; allocation back at ${kb(s.reading.currentKb)}`);
  },
};

export const SCENARIOS: readonly Scenario[] = [readState, raiseTarget, lowerTarget, allocateThenLower, aboveHostRam, tooLow, nonRoot, oneByte, overLong, rapid];
