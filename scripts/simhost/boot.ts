/**
 * A boot of the simulated machine, shared by the fake `reboot` (in a detached
 * process that outlives its caller) and SimHost.powerCycle / SimHost.create:
 *
 * 1. shutdown (reboot only): wait for the xentest lock holder to exit, or the
 *    reboot command's parent when there is no lock; a lock holder still there
 *    after the shutdown timeout is SIGKILLed with its descendants, as
 *    systemd's final kill does; then every process of the previous boot goes;
 * 2. GRUB: grubenv and grub.cfg decide the entry (grubmenu.ts), next_entry is
 *    used once; a crash (panic, image GRUB cannot load) reboots into the
 *    default entry, as Xen's reboot-on-panic does once next_entry is spent;
 * 3. the hypervisor's identity is read from the image (ELF build id note,
 *    embedded strings) into running.json, with dom0 and no guests; the boot id
 *    under <root>/proc changes;
 * 4. the resume unit runs as systemd would run it: its ConditionPathExists
 *    under the machine root, its ExecStart with the machine's paths, cwd /,
 *    output appended to D/log/resume-<n>.log;
 * 5. the boot record is appended to D/state/boots.jsonl.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { readUnit, readUnitConditionPaths, readUnitExecStart } from '../../agent/units.js';
import { embeddedIdentity, gnuBuildId, hasMultiboot2Header, hasMultibootHeader, isElf, UNBOOTABLE_MARKER } from './elf.js';
import { appendJsonLine, readJson, withFileLock, writeFileReplacing, writeJson } from './fsutil.js';
import { getVar, readEnvBlock, setVar, writeEnvBlockInPlace } from './grubenv.js';
import { parseGrubCfg, resolveEntry, type MenuNode, type ParsedGrubCfg } from './grubmenu.js';
import { hostPath, readMachine, type SimLayout } from './layout.js';
import { balloonHookEnv, initBalloon, XEN_RESERVED_MIB } from './balloon.js';
import { killProcessTree, processAlive, processStartTime } from './procs.js';
import { DOM0_NAME, killRunner, startRunner, writeSysHypervisor } from './runners.js';
import type {
  BootAttempt,
  BootRecord,
  DomainState,
  Faults,
  HypervisorIdentity,
  KernelState,
  MachineConfig,
  ResumeRecord,
  RunningState,
  ShutdownRecord,
} from './types.js';

/** A crash on the default entry too would loop for ever on a real machine; the simulation stops after this many tries. */
const MAX_ATTEMPTS = 3;
export { XEN_RESERVED_MIB };

export interface BootRequest {
  cause: BootRecord['cause'];
  requestedAt: string;
  /** Wait for the lock holder (or this pid, the reboot command's parent) before booting. */
  shutdown: boolean;
  callerParent?: number;
  /** Preassigned boot number (power cycle, create); otherwise the next one. */
  n?: number;
  runResume: boolean;
}

// ---------------------------------------------------------------- processes

interface TrackedProc {
  pid: number;
  startTime: string;
  /** supervisor: a runner's supervisor (runners.ts); runner: `xentest run` in a domain. */
  role: 'boot' | 'resume' | 'supervisor' | 'runner';
  boot: number | null;
}

export function trackProcess(layout: SimLayout, pid: number, role: TrackedProc['role'], boot: number | null): void {
  const startTime = processStartTime(pid);
  if (startTime === undefined) return;
  writeJson(path.join(layout.procs, `${pid}.json`), { pid, startTime, role, boot } satisfies TrackedProc);
}

export function untrackProcess(layout: SimLayout, pid: number): void {
  fs.rmSync(path.join(layout.procs, `${pid}.json`), { force: true });
}

export function trackedProcesses(layout: SimLayout): TrackedProc[] {
  if (!fs.existsSync(layout.procs)) return [];
  const out: TrackedProc[] = [];
  for (const name of fs.readdirSync(layout.procs)) {
    if (!name.endsWith('.json')) continue;
    const p = readJson<TrackedProc>(path.join(layout.procs, name));
    if (!p) continue;
    // The same pid with another start time is another process: the tracked one is gone.
    if (processStartTime(p.pid) === p.startTime) out.push(p);
    else untrackProcess(layout, p.pid);
  }
  return out;
}

/**
 * The pid in the xentest lock file ({"pid": N, ...}) if that process still
 * runs. With the agent's "startTime" (field 22 of /proc/PID/stat) a reused
 * pid is told apart: a stale lock never gets an unrelated process killed.
 */
export function lockHolderPid(layout: SimLayout): number | undefined {
  let v: { pid?: unknown; startTime?: unknown };
  try {
    v = JSON.parse(fs.readFileSync(layout.xentestLock, 'utf8')) as { pid?: unknown; startTime?: unknown };
  } catch {
    return undefined;
  }
  if (typeof v.pid !== 'number' || !Number.isInteger(v.pid) || v.pid <= 1) return undefined;
  if (!processAlive(v.pid)) return undefined;
  if (typeof v.startTime === 'string' && v.startTime !== '' && processStartTime(v.pid) !== v.startTime) return undefined;
  return v.pid;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function shutdown(layout: SimLayout, machine: MachineConfig, callerParent: number | undefined): Promise<ShutdownRecord> {
  const started = Date.now();
  const holder = lockHolderPid(layout);
  let waitedFor: ShutdownRecord['waitedFor'] = null;
  if (holder !== undefined) waitedFor = { pid: holder, why: 'lock' };
  else if (callerParent !== undefined && callerParent > 1 && processAlive(callerParent)) waitedFor = { pid: callerParent, why: 'caller' };
  const killed: number[] = [];
  if (waitedFor) {
    while (processAlive(waitedFor.pid) && Date.now() - started < machine.shutdownTimeoutMs) await sleep(25);
    // The caller's parent may be a test runner, never ours to kill; a lock holder is the agent.
    if (waitedFor.why === 'lock' && processAlive(waitedFor.pid)) killed.push(...killProcessTree(waitedFor.pid));
  }
  // Going down ends whatever else runs on the machine: the previous boot's resume unit, a new lock holder.
  // The guests die with the host, and with them their runners; dom0's runner is stopped like every other unit.
  for (const p of trackedProcesses(layout)) {
    if (p.role !== 'boot') killed.push(...killProcessTree(p.pid));
  }
  const r = readJson<RunningState>(layout.running);
  for (const d of [...(r?.dom0 ? [r.dom0] : []), ...(r?.domains ?? [])]) killed.push(...killRunner(d.runner));
  const late = lockHolderPid(layout);
  if (late !== undefined && late !== waitedFor?.pid) killed.push(...killProcessTree(late));
  return { waitedFor, killed: [...new Set(killed)], waitedMs: Date.now() - started };
}

// ---------------------------------------------------------------- boot numbers and records

export function allocateBootNumber(layout: SimLayout): number {
  return withFileLock(layout.bootCounter, () => {
    let last = -1;
    try {
      last = Number(fs.readFileSync(layout.bootCounter, 'utf8').trim());
    } catch {
      // First boot.
    }
    const n = last + 1;
    writeFileReplacing(layout.bootCounter, `${n}\n`);
    return n;
  });
}

interface InProgress {
  pid: number;
  record: BootRecord;
}

function inProgressFile(layout: SimLayout, n: number): string {
  return path.join(layout.booting, `${n}.json`);
}

function saveInProgress(layout: SimLayout, record: BootRecord): void {
  writeJson(inProgressFile(layout, record.n), { pid: process.pid, record } satisfies InProgress);
}

function finish(layout: SimLayout, record: BootRecord): void {
  record.resumeExitStatus = record.resume?.exitStatus ?? null;
  appendJsonLine(layout.boots, record);
  fs.rmSync(inProgressFile(layout, record.n), { force: true });
}

/** Boots cut short by a power cut: their process is gone, so write their records for them. */
export function finishInterruptedBoots(layout: SimLayout): void {
  if (!fs.existsSync(layout.booting)) return;
  for (const name of fs.readdirSync(layout.booting)) {
    if (!name.endsWith('.json')) continue;
    const ip = readJson<InProgress>(path.join(layout.booting, name));
    if (!ip || processAlive(ip.pid)) continue;
    const r = ip.record;
    r.powerLost = true;
    r.finishedAt = new Date().toISOString();
    if (r.resume && r.resume.finishedAt === null && r.resume.skipped === null) {
      r.resume.signal = 'SIGKILL';
      r.resume.finishedAt = r.finishedAt;
    }
    finish(layout, r);
  }
}

// ---------------------------------------------------------------- faults

export function readFaults(layout: SimLayout): Faults {
  return readJson<Faults>(layout.faults) ?? {};
}

/** Use up a one-shot fault; true if it was set. */
function consumeFault(layout: SimLayout, key: 'bootFails' | 'resumeNotRun'): boolean {
  return withFileLock(layout.faults, () => {
    const f = readFaults(layout);
    if (!f[key]) return false;
    delete f[key];
    writeJson(layout.faults, f);
    return true;
  });
}

// ---------------------------------------------------------------- GRUB

interface GrubChoice {
  asked: string;
  source: 'next_entry' | 'default';
}

/** The header of grub.cfg run against grubenv: what `default` is, with next_entry spent and saved. */
function grubDefault(layout: SimLayout, cfg: ParsedGrubCfg): GrubChoice {
  let env: Array<[string, string]> = [];
  let envOk = false;
  if (cfg.header.loadsEnv && fs.existsSync(layout.grubEnv) && fs.statSync(layout.grubEnv).size > 0) {
    try {
      env = readEnvBlock(layout.grubEnv);
      envOk = true;
    } catch {
      // load_env fails on a damaged block and GRUB goes on without it.
    }
  }
  let choice: GrubChoice;
  const next = getVar(env, 'next_entry');
  if (cfg.header.honoursNextEntry && next) {
    choice = { asked: next, source: 'next_entry' };
    env = setVar(env, 'next_entry', '');
  } else {
    const expr = cfg.header.defaultExpr;
    choice = { asked: expr.replace(/\$\{saved_entry\}/g, getVar(env, 'saved_entry') ?? ''), source: 'default' };
  }
  if (cfg.header.honoursPrevSavedEntry) {
    const prev = getVar(env, 'prev_saved_entry');
    if (prev) {
      env = setVar(setVar(env, 'saved_entry', prev), 'prev_saved_entry', '');
    }
  }
  if (envOk) writeEnvBlockInPlace(layout.grubEnv, env);
  return choice;
}

interface Loaded {
  kind: 'xen' | 'linux';
  hypervisor: HypervisorIdentity | null;
  kernel: KernelState;
  dom0MemoryMiB: number;
  dom0MaxMiB: number;
  dom0Vcpus: number;
}

class BootCrash extends Error {
  constructor(
    message: string,
    /** The crash was the injected bootFails fault (which is then used up). */
    readonly injected = false,
  ) {
    super(message);
  }
}

function readImage(layout: SimLayout, grubPath: string): Buffer {
  const file = hostPath(layout, grubPath.replace(/^\([^)]*\)/, ''));
  if (!fs.existsSync(file)) throw new BootCrash(`error: file \`${grubPath}' not found.`);
  const raw = fs.readFileSync(file);
  // GRUB's gzio opens compressed files transparently (and passes others through).
  if (raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      return zlib.gunzipSync(raw);
    } catch {
      throw new BootCrash(`error: premature end of compressed file \`${grubPath}'.`);
    }
  }
  return raw;
}

/** Xen's parse_size_and_unit: K, M, G, T, B suffixes, KiB without one. In MiB. */
function sizeMiB(s: string): number | undefined {
  const m = /^(\d+)([kKmMgGtTbB%]?)$/.exec(s.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  switch ((m[2] ?? '').toLowerCase()) {
    case 'b':
      return Math.floor(n / 1048576);
    case 'm':
      return n;
    case 'g':
      return n * 1024;
    case 't':
      return n * 1024 * 1024;
    default:
      return Math.floor(n / 1024);
  }
}

function dom0Memory(cmdline: string, machine: MachineConfig): { memory: number; max: number } {
  const all = machine.totalMemoryMiB - XEN_RESERVED_MIB - Math.min(128, Math.floor(machine.totalMemoryMiB / 16));
  const m = /(?:^|\s)dom0_mem=(\S+)/.exec(cmdline);
  if (!m) return { memory: all, max: all };
  let memory: number | undefined;
  let max: number | undefined;
  for (const part of (m[1] as string).split(',')) {
    if (part.startsWith('max:')) max = sizeMiB(part.slice(4));
    else if (part.startsWith('min:')) continue;
    else memory = sizeMiB(part);
  }
  const mem = Math.min(memory ?? max ?? all, all);
  return { memory: mem, max: Math.min(max ?? mem, all) };
}

function kernelRelease(image: string): string {
  return path.basename(image).replace(/^[^0-9]*-/, '');
}

/** Run a menuentry's loader commands: load the images the way GRUB would, then "boot" them. */
function loadEntry(layout: SimLayout, machine: MachineConfig, entry: MenuNode, oneShot: boolean, faults: { bootFails: boolean }): Loaded {
  const cmds = entry.commands;
  const hv = cmds.find((c) => c[0] === 'multiboot2' || c[0] === 'multiboot' || c[0] === 'xen_hypervisor');
  if (!hv) {
    const linux = cmds.find((c) => c[0] === 'linux' || c[0] === 'linux16' || c[0] === 'linuxefi');
    if (!linux || !linux[1]) throw new BootCrash(`error: you need to load the kernel first.`);
    readImage(layout, linux[1]);
    for (const c of cmds.filter((x) => x[0] === 'initrd')) for (const f of c.slice(1)) readImage(layout, f);
    return {
      kind: 'linux',
      hypervisor: null,
      kernel: { release: kernelRelease(linux[1]), image: linux[1], commandLine: linux.slice(2).join(' ') },
      dom0MemoryMiB: 0,
      dom0MaxMiB: 0,
      dom0Vcpus: 0,
    };
  }
  const imagePath = hv[1];
  if (!imagePath) throw new BootCrash(`error: filename expected.`);
  const image = readImage(layout, imagePath);
  if (hv[0] === 'multiboot2' && !hasMultiboot2Header(image)) throw new BootCrash('error: no multiboot header found.');
  if (hv[0] === 'multiboot' && !hasMultibootHeader(image) && !hasMultiboot2Header(image)) throw new BootCrash('error: no multiboot header found.');
  if (!isElf(image)) throw new BootCrash('error: invalid arch-dependent ELF magic.');
  const modules = cmds.filter((c) => c[0] === 'module2' || c[0] === 'module' || c[0] === 'xen_module').map((c) => c.slice(1).filter((w) => w !== '--nounzip'));
  for (const m of modules) if (m[0]) readImage(layout, m[0]);
  const commandLine = hv.slice(2).join(' ');
  const ident = embeddedIdentity(image);
  if (image.includes(UNBOOTABLE_MARKER)) {
    throw new BootCrash('(XEN) Panic on CPU 0: Xen BUG at setup.c (this build carries XEN_SIM_BOOTS=no). Reboot in five seconds...');
  }
  if (oneShot && faults.bootFails) {
    throw new BootCrash('(XEN) Panic on CPU 0: FATAL TRAP: vector = 6 (invalid opcode) [injected fault: bootFails]. Reboot in five seconds...', true);
  }
  const dom0Kernel = modules[0];
  if (!dom0Kernel || !dom0Kernel[0]) throw new BootCrash('(XEN) Panic on CPU 0: Could not set up DOM0 guest OS (no dom0 kernel module). Reboot in five seconds...');
  const get = (k: string): string => ident?.get(k) ?? '';
  const major = Number(get('XEN_VERSION') || NaN);
  const minor = Number(get('XEN_SUBVERSION') || NaN);
  const hypervisor: HypervisorIdentity = {
    image: imagePath,
    major: Number.isFinite(major) ? major : 0,
    minor: Number.isFinite(minor) ? minor : 0,
    extra: get('XEN_EXTRAVERSION'),
    version: get('XEN_FULLVERSION') || `${major}.${minor}${get('XEN_EXTRAVERSION')}`,
    changeset: get('XEN_CHANGESET'),
    compileDate: get('XEN_COMPILE_DATE'),
    compileTime: get('XEN_COMPILE_TIME'),
    compiledBy: get('XEN_COMPILE_BY'),
    compileDomain: get('XEN_COMPILE_DOMAIN'),
    compileHost: get('XEN_COMPILE_HOST'),
    compiler: get('XEN_COMPILER'),
    buildId: gnuBuildId(image) ?? '',
    commandLine,
  };
  const mem = dom0Memory(commandLine, machine);
  const vcpuArg = /(?:^|\s)dom0_max_vcpus=(?:\d+-)?(\d+)/.exec(commandLine);
  return {
    kind: 'xen',
    hypervisor,
    kernel: { release: kernelRelease(dom0Kernel[0]), image: dom0Kernel[0], commandLine: dom0Kernel.slice(1).join(' ') },
    dom0MemoryMiB: mem.memory,
    dom0MaxMiB: mem.max,
    dom0Vcpus: vcpuArg ? Math.min(Number(vcpuArg[1]), machine.nrCpus) : machine.nrCpus,
  };
}

interface GrubOutcome {
  attempts: BootAttempt[];
  loaded: Loaded | null;
  path: MenuNode[];
  down: string | null;
}

function runGrub(layout: SimLayout, machine: MachineConfig): GrubOutcome {
  const attempts: BootAttempt[] = [];
  for (let i = 0; i < MAX_ATTEMPTS; i++) {
    if (!fs.existsSync(layout.grubCfg)) {
      return { attempts, loaded: null, path: [], down: `GRUB found no ${'/boot/grub/grub.cfg'} and stopped at its rescue prompt` };
    }
    const cfg = parseGrubCfg(fs.readFileSync(layout.grubCfg, 'utf8'));
    const choice = grubDefault(layout, cfg);
    const res = resolveEntry(cfg.menu, choice.asked);
    const entry = res.path[res.path.length - 1];
    const attempt: BootAttempt = {
      asked: choice.asked,
      source: choice.source,
      titles: res.path.map((n) => n.title),
      ids: res.path.map((n) => n.id),
      resolution: res.fallback,
      image: null,
      outcome: 'crashed',
      reason: null,
    };
    attempts.push(attempt);
    if (!entry) {
      attempt.titles = null;
      attempt.ids = null;
      attempt.reason = 'the menu has no entries';
      return { attempts, loaded: null, path: [], down: 'GRUB has no menu entry to boot' };
    }
    const hv = entry.commands.find((c) => c[0] === 'multiboot2' || c[0] === 'multiboot' || c[0] === 'xen_hypervisor');
    attempt.image = hv?.[1] ?? null;
    const oneShot = choice.source === 'next_entry';
    const bootFails = oneShot && readFaults(layout).bootFails === true;
    try {
      const loaded = loadEntry(layout, machine, entry, oneShot, { bootFails });
      attempt.outcome = 'booted';
      return { attempts, loaded, path: res.path, down: null };
    } catch (e) {
      if (!(e instanceof BootCrash)) throw e;
      if (e.injected) consumeFault(layout, 'bootFails');
      attempt.reason = e.message;
      // Xen reboots on panic; GRUB's next_entry was spent on this try, so the next one boots the default.
    }
  }
  return { attempts, loaded: null, path: [], down: `every boot crashed (${MAX_ATTEMPTS} tries): the machine reboots in a loop until it is power cycled` };
}

function domain0(loaded: Loaded, at: string): DomainState {
  return {
    id: 0,
    name: 'Domain-0',
    memoryMiB: loaded.dom0MemoryMiB,
    maxMemoryMiB: loaded.dom0MaxMiB,
    targetMiB: loaded.dom0MemoryMiB,
    vcpus: loaded.dom0Vcpus,
    state: 'r-----',
    createdAt: at,
    config: null,
  };
}

/** GRUB, the hypervisor and dom0 up to the point where systemd starts units. Synchronous: SimHost.create runs it in-process. */
export function bootMachine(layout: SimLayout, record: BootRecord): void {
  const machine = readMachine(layout);
  const grub = runGrub(layout, machine);
  record.attempts = grub.attempts;
  const first = grub.attempts[0];
  if (first) record.asked = { entry: first.asked, source: first.source };
  const at = new Date().toISOString();
  const running: RunningState = {
    boot: record.n,
    bootedAt: at,
    kind: grub.loaded ? grub.loaded.kind : 'down',
    entry: grub.path.map((n) => n.title),
    hypervisor: grub.loaded?.hypervisor ?? null,
    kernel: grub.loaded?.kernel ?? null,
    dom0: grub.loaded?.kind === 'xen' ? domain0(grub.loaded, at) : null,
    domains: [],
    nextDomid: 1,
    ...(grub.down ? { down: grub.down } : {}),
  };
  withFileLock(layout.running, () => writeJson(layout.running, running));
  const crashed = grub.attempts.filter((a) => a.outcome === 'crashed');
  const fellBackBy = grub.attempts.find((a) => a.resolution !== null);
  record.down = grub.down !== null;
  record.entry = grub.loaded ? grub.path.map((n) => n.title.replace(/>/g, '>>')).join('>') : null;
  record.entryId = grub.loaded ? grub.path.map((n) => (n.id ?? n.title).replace(/>/g, '>>')).join('>') : null;
  record.image = grub.loaded?.hypervisor?.image ?? null;
  record.hypervisorVersion = grub.loaded?.hypervisor?.version ?? null;
  record.buildId = grub.loaded?.hypervisor?.buildId ?? null;
  record.fellBack = crashed.length > 0 || fellBackBy !== undefined;
  const reasons = [...crashed.map((a) => a.reason ?? 'crashed'), ...(fellBackBy?.resolution ? [fellBackBy.resolution] : [])];
  record.reason = grub.down ?? (reasons.length > 0 ? reasons.join('; ') : null);
  if (grub.loaded) {
    record.bootedAt = at;
    fs.mkdirSync(path.dirname(layout.bootIdFile), { recursive: true });
    writeFileReplacing(layout.bootIdFile, `${randomUUID()}\n`);
    // xenfs: dom0 is the control domain; a native Linux boot has no /proc/xen.
    if (grub.loaded.kind === 'xen') {
      fs.mkdirSync(path.dirname(layout.xenCapabilities), { recursive: true });
      writeFileReplacing(layout.xenCapabilities, 'control_d\n');
      const h = grub.loaded.hypervisor;
      if (h) writeSysHypervisor(layout.root, h);
      // dom0's balloon driver, as its kernel has it (MachineConfig.dom0Balloon); xenstore has its memory keys only after the first xl mem-set.
      initBalloon(layout.root, {
        kind: machine.dom0Balloon ?? 'sysfs',
        memoryKb: grub.loaded.dom0MemoryMiB * 1024,
        staticMaxKb: grub.loaded.dom0MaxMiB * 1024,
        inXenstore: false,
        dir: layout.dir,
        name: DOM0_NAME,
      });
    } else {
      fs.rmSync(path.dirname(layout.xenCapabilities), { recursive: true, force: true });
      fs.rmSync(path.join(layout.root, 'sys/hypervisor'), { recursive: true, force: true });
      initBalloon(layout.root, { kind: 'none', memoryKb: 0, staticMaxKb: 0, inXenstore: false, dir: layout.dir, name: DOM0_NAME });
    }
  }
}

/** dom0's runner unit, started with the other units of a boot that came up (SimHost.create and every boot). */
export function startDom0Runner(layout: SimLayout, record: BootRecord): void {
  if (record.down) return;
  startRunner(layout, { id: 0, name: DOM0_NAME }, record.n);
}

// ---------------------------------------------------------------- the resume unit

export function isNodeScript(file: string): boolean {
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch {
    return false;
  }
  if (/\.[cm]?js$/.test(real)) return true;
  try {
    const fd = fs.openSync(real, 'r');
    const buf = Buffer.alloc(64);
    const n = fs.readSync(fd, buf, 0, 64, 0);
    fs.closeSync(fd);
    return /^#!.*\bnode\b/.test(buf.toString('utf8', 0, n).split('\n')[0] ?? '');
  } catch {
    return false;
  }
}

/** The environment systemd gives a system service, plus the simulation's variables and the unit's Environment=. */
export function unitEnvironment(layout: SimLayout, machine: MachineConfig, unitEnv: Record<string, string>): NodeJS.ProcessEnv {
  // Every Node process of a simulated domain sees its balloon driver (balloon-hook.ts).
  return balloonHookEnv({
    PATH: `${layout.binDir}:${path.dirname(machine.node)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    LANG: 'C.UTF-8',
    SIMHOST_DIR: layout.dir,
    XENTEST_ROOT: layout.root,
    XENTEST_STATE_DIR: layout.xentestStateDir,
    ...unitEnv,
    ...machine.resumeEnv,
  });
}

export function unitEnvironmentLines(unitFile: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readUnit(unitFile).values('Service', 'Environment')) {
    for (const m of line.matchAll(/(?:"([^"]*)"|(\S+))/g)) {
      const assign = m[1] ?? m[2] ?? '';
      const eq = assign.indexOf('=');
      if (eq > 0) out[assign.slice(0, eq)] = assign.slice(eq + 1);
    }
  }
  return out;
}

/** systemd's ConditionPathExists=: "!" negates; "|" conditions are triggers, one of which must hold. */
function checkConditions(layout: SimLayout, conditions: string[]): { all: Array<{ path: string; held: boolean }>; ok: boolean } {
  const all: Array<{ path: string; held: boolean }> = [];
  let triggers = 0;
  let triggered = false;
  let ok = true;
  for (const raw of conditions) {
    let p = raw;
    const trigger = p.startsWith('|');
    if (trigger) p = p.slice(1);
    const negate = p.startsWith('!');
    if (negate) p = p.slice(1);
    const held = fs.existsSync(hostPath(layout, p)) !== negate;
    all.push({ path: raw, held });
    if (trigger) {
      triggers++;
      if (held) triggered = true;
    } else if (!held) {
      ok = false;
    }
  }
  return { all, ok: ok && (triggers === 0 || triggered) };
}

async function runResumeUnit(layout: SimLayout, machine: MachineConfig, record: BootRecord): Promise<void> {
  const logFile = path.join(layout.logDir, `resume-${record.n}.log`);
  const resume: ResumeRecord = {
    command: [],
    ran: null,
    exitStatus: null,
    signal: null,
    log: logFile,
    skipped: null,
    conditions: [],
    startedAt: null,
    finishedAt: null,
  };
  record.resume = resume;
  const unitFile = machine.resumeUnit;
  if (!fs.existsSync(unitFile)) {
    resume.skipped = 'no-unit';
    return;
  }
  resume.command = readUnitExecStart(unitFile);
  const cond = checkConditions(layout, readUnitConditionPaths(unitFile));
  resume.conditions = cond.all;
  if (consumeFault(layout, 'resumeNotRun')) {
    resume.skipped = 'fault';
    return;
  }
  if (!cond.ok) {
    resume.skipped = 'condition';
    return;
  }
  const [exe, ...args] = resume.command as [string, ...string[]];
  const hostExe = exe.startsWith('/') ? hostPath(layout, exe) : exe;
  resume.ran = isNodeScript(hostExe) ? [machine.node, hostExe, ...args] : [hostExe, ...args];
  resume.startedAt = new Date().toISOString();
  saveInProgress(layout, record);
  fs.mkdirSync(layout.logDir, { recursive: true });
  const fd = fs.openSync(logFile, 'a');
  fs.writeSync(fd, `-- simhost boot ${record.n}: ${path.basename(unitFile)}: ExecStart=${resume.command.join(' ')} (runs ${resume.ran.join(' ')})\n`);
  const env = unitEnvironment(layout, machine, unitEnvironmentLines(unitFile));
  const [file, ...argv] = resume.ran as [string, ...string[]];
  const done = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    const child = spawn(file, argv, { cwd: '/', env, stdio: ['ignore', fd, fd], detached: true });
    child.on('error', (e) => {
      fs.writeSync(fd, `simhost: cannot start ${file}: ${e.message}\n`);
      resolve({ code: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 203 : 126, signal: null });
    });
    if (child.pid !== undefined) trackProcess(layout, child.pid, 'resume', record.n);
    child.on('exit', (code, signal) => {
      if (child.pid !== undefined) untrackProcess(layout, child.pid);
      resolve({ code, signal });
    });
  });
  resume.exitStatus = done.code;
  resume.signal = done.signal;
  resume.finishedAt = new Date().toISOString();
  fs.writeSync(fd, `-- simhost boot ${record.n}: ${done.signal ? `killed by ${done.signal}` : `exit status ${done.code}`}\n`);
  fs.closeSync(fd);
}

// ---------------------------------------------------------------- the whole boot

export function newBootRecord(n: number, cause: BootRecord['cause'], requestedAt: string): BootRecord {
  return {
    n,
    cause,
    requestedAt,
    bootedAt: null,
    finishedAt: requestedAt,
    asked: { entry: '', source: 'default' },
    entry: null,
    entryId: null,
    image: null,
    hypervisorVersion: null,
    buildId: null,
    fellBack: false,
    reason: null,
    attempts: [],
    down: false,
    shutdown: null,
    resume: null,
    resumeExitStatus: null,
  };
}

/** The boot process's work (cli.ts `boot`): shutdown, GRUB and the hypervisor, the resume unit, the record. */
export async function runBoot(layout: SimLayout, req: BootRequest): Promise<BootRecord> {
  const machine = readMachine(layout);
  trackProcess(layout, process.pid, 'boot', req.n ?? null);
  try {
    const shut = req.shutdown ? await shutdown(layout, machine, req.callerParent) : null;
    const n = req.n ?? allocateBootNumber(layout);
    trackProcess(layout, process.pid, 'boot', n);
    const record = newBootRecord(n, req.cause, req.requestedAt);
    record.shutdown = shut;
    saveInProgress(layout, record);
    bootMachine(layout, record);
    saveInProgress(layout, record);
    startDom0Runner(layout, record);
    if (req.runResume && !record.down) await runResumeUnit(layout, machine, record);
    record.finishedAt = new Date().toISOString();
    finish(layout, record);
    return record;
  } finally {
    untrackProcess(layout, process.pid);
  }
}
