/**
 * The fake `xl`: Xen's toolstack command against the simulated machine's
 * running.json, with xl's real output formats (tools/xl/xl_info.c,
 * xl_vmcontrol.c, xl_mem.c) and messages. Under native Linux or a machine
 * that is down it fails as xl does without a hypervisor.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readFaults } from './boot.js';
import { readJson, withFileLock, writeJson } from './fsutil.js';
import { readMachine, type SimLayout } from './layout.js';
import { domainRoot, killRunner, prepareDomainRoot, startRunner, waitGone } from './runners.js';
import { balloonCurrentKb, balloonKindOfKernel, balloonTargetKb, enterXenstore, hostFreeMiB, initBalloon, LIBXL_MAXMEM_CONSTANT_KB, setTargetKb } from './balloon.js';
import type { DomainState, MachineConfig, RunningState } from './types.js';
import { parseXlConfig, XlConfigError, type XlValue } from './xlconfig.js';

export interface Io {
  out(s: string): void;
  err(s: string): void;
}

class XlExit extends Error {
  constructor(readonly status: number) {
    super(`exit ${status}`);
  }
}

const NO_HYPERVISOR =
  'xencall: error: Could not obtain handle on privileged command interface: No such file or directory\n' +
  'libxl: error: libxl.c:102:libxl_ctx_alloc: cannot open libxc handle: No such file or directory\n' +
  'cannot init xl context\n';

const LIBXL_MIN_DOM0_MEM_MIB = 128;

const USAGES: Record<string, string> = {
  dmesg: 'Usage: xl [-v] dmesg [-c]\n\nRead and/or clear dmesg buffer.\n\nOptions:\n\n-c                        Clear dmesg buffer as well as printing it\n',
  info: 'Usage: xl [-v] info [-n]\n\nGet information about Xen host.\n\nOptions:\n\n-n, --numa         List host NUMA topology information\n',
  list: 'Usage: xl [-v] list [options] [Domain]\n\nList information about all/some domains.\n\nOptions:\n\n-l, --long              Output all VM details\n-v, --verbose           Prints out UUIDs and security context\n',
  create:
    'Usage: xl [-vfNtT] create <ConfigFile> [options] [vars]\n\nCreate a domain from config file <filename>.\n\nOptions:\n\n-h                      Print this help.\n-p                      Leave the domain paused after it is created.\n-f FILE, --defconfig=FILE\n                        Use the given configuration file.\n-q, --quiet             Quiet.\n-n, --dryrun            Dry run - prints the resulting configuration\n',
  destroy: 'Usage: xl [-v] destroy [options] <Domain>\n\nTerminate a domain immediately.\n\nOptions:\n\n-f                      Permit destroying domain 0.\n',
  'mem-set': 'Usage: xl [-v] mem-set <Domain> <MemMiB|MemKiB|MemMiB|MemGiB>\n\nSet the current memory usage for a domain.\n',
  shutdown: 'Usage: xl [-vF] shutdown [options] <-a|Domain>\n\nIssue a shutdown signal to a domain.\n',
  pause: 'Usage: xl [-v] pause <Domain>\n\nPause execution of a domain.\n',
  unpause: 'Usage: xl [-v] unpause <Domain>\n\nUnpause a paused domain.\n',
};

function fail(io: Io, message: string, status = 1): never {
  io.err(message.endsWith('\n') ? message : message + '\n');
  throw new XlExit(status);
}

function usageError(io: Io, cmd: string, needed: number): never {
  io.err(`'xl ${cmd}' requires at least ${needed} argument${needed > 1 ? 's' : ''}.\n\n`);
  io.out(USAGES[cmd] ?? '');
  throw new XlExit(1);
}

function readRunning(layout: SimLayout): RunningState {
  const r = readJson<RunningState>(layout.running);
  if (!r) throw new Error(`${layout.running} is missing`);
  return r;
}

function requireXen(io: Io, r: RunningState): asserts r is RunningState & { dom0: DomainState; hypervisor: NonNullable<RunningState['hypervisor']> } {
  if (r.kind !== 'xen' || !r.dom0 || !r.hypervisor) fail(io, NO_HYPERVISOR);
}

/** Change running.json under its lock. */
function update(layout: SimLayout, io: Io, fn: (r: RunningState & { dom0: DomainState }) => void): void {
  withFileLock(layout.running, () => {
    const r = readRunning(layout);
    requireXen(io, r);
    fn(r);
    writeJson(layout.running, r);
  });
}

function allDomains(r: RunningState & { dom0: DomainState }): DomainState[] {
  return [r.dom0, ...r.domains.slice().sort((a, b) => a.id - b.id)];
}

/** libxl_domain_qualifier_to_domid: a number is a domid, anything else a name. */
function findDomain(io: Io, r: RunningState & { dom0: DomainState }, q: string): DomainState {
  const doms = allDomains(r);
  if (/^\d+$/.test(q)) {
    const d = doms.find((x) => x.id === Number(q));
    if (!d) fail(io, `libxl: error: libxl_domain.c:353:libxl_domain_info: Domain ${q}:getting domain info list: No such process\nError: Domain '${q}' does not exist.`);
    return d;
  }
  const d = doms.find((x) => x.name === q);
  if (!d) fail(io, `${q} is an invalid domain identifier (rc=-6)`);
  return d;
}

function pad(key: string): string {
  return key.padEnd(23);
}

/** The host's free memory (MiB): what Xen and every domain's allocation at this instant leave (balloon.ts). */
function freeMemory(layout: SimLayout, machine: MachineConfig, r: RunningState & { dom0: DomainState }): number {
  return hostFreeMiB(layout.dir, machine, allDomains(r));
}

function xlInfo(layout: SimLayout, io: Io): void {
  const r = readRunning(layout);
  requireXen(io, r);
  const m = readMachine(layout);
  const h = r.hypervisor;
  const rows: Array<[string, string | number]> = [
    ['host', m.hostname],
    ['release', r.kernel?.release ?? ''],
    ['version', m.kernelBuild],
    ['machine', 'x86_64'],
    ['nr_cpus', m.nrCpus],
    ['max_cpu_id', m.nrCpus - 1],
    ['nr_nodes', 1],
    ['cores_per_socket', m.nrCpus],
    ['threads_per_core', 1],
    ['cpu_mhz', '2893.202'],
    ['hw_caps', '178bfbff:f6d8320b:2c100800:00000121:0000000f:d19b27ab:00000008:00000100'],
    ['virt_caps', 'pv hvm hvm_directio pv_directio hap shadow iommu_hap_pt_share gnttab-v1 gnttab-v2'],
    ['total_memory', m.totalMemoryMiB],
    ['free_memory', freeMemory(layout, m, r)],
    ['sharing_freed_memory', 0],
    ['sharing_used_memory', 0],
    ['outstanding_claims', 0],
    ['free_cpus', 0],
    ['xen_major', h.major],
    ['xen_minor', h.minor],
    ['xen_extra', h.extra],
    ['xen_version', `${h.major}.${h.minor}${h.extra}`],
    ['xen_caps', 'xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64'],
    ['xen_scheduler', 'credit2'],
    ['xen_pagesize', 4096],
    ['platform_params', 'virt_start=0xffff800000000000'],
    ['xen_changeset', h.changeset],
    ['xen_commandline', h.commandLine],
    ['cc_compiler', h.compiler],
    ['cc_compile_by', h.compiledBy],
    ['cc_compile_domain', h.compileDomain],
    ['cc_compile_date', h.compileDate],
    ['build_id', h.buildId],
    ['xend_config_format', 4],
  ];
  io.out(rows.map(([k, v]) => `${pad(k)}: ${v}\n`).join(''));
}

function cpuTime(d: DomainState, now: number): string {
  const secs = Math.max(0, (now - Date.parse(d.createdAt)) / 1000) * (d.id === 0 ? 0.25 : 0.02);
  return secs.toFixed(1).padStart(8);
}

/** The hypervisor's console ring: the boot messages of the build running now (xen/drivers/char/console.c, arch/x86/setup.c). */
function xlDmesg(layout: SimLayout, io: Io): void {
  const r = readRunning(layout);
  requireXen(io, r);
  const m = readMachine(layout);
  const h = r.hypervisor;
  const lines = [
    `Xen version ${h.major}.${h.minor}${h.extra} (${h.compiledBy}@${h.compileDomain}) (${h.compiler}) debug=n ${h.compileDate}`,
    `Latest ChangeSet: ${h.changeset}`,
    ...(h.buildId ? [`build-id: ${h.buildId}`] : []),
    'Bootloader: GRUB 2.06-13+deb12u1',
    `Command line: ${h.commandLine}`.trimEnd(),
    `System RAM: ${m.totalMemoryMiB}MB (${m.totalMemoryMiB * 1024}kB)`,
    `Brought up ${m.nrCpus} CPUs`,
    '*** LOADING DOMAIN 0 ***',
    `Dom0 has maximum ${r.dom0.vcpus} VCPUs`,
    `Freed 664kB init memory`,
  ];
  io.out(lines.map((l) => `(XEN) ${l}\n`).join(''));
}

const LIST_HEADER = 'Name                                        ID   Mem VCPUs\tState\tTime(s)\n';

function listRow(layout: SimLayout, d: DomainState, now: number): string {
  // The balloon driver's allocation at this instant (it follows xl mem-set's target with a lag).
  const kb = balloonCurrentKb(d.id === 0 ? layout.root : domainRoot(layout, d.name));
  const mib = kb === null ? d.memoryMiB : kb / 1024;
  return `${d.name.padEnd(40)} ${String(d.id).padStart(5)} ${String(Math.floor(mib)).padStart(5)} ${String(d.vcpus).padStart(5)}     ${d.state}  ${cpuTime(d, now)}\n`;
}

function xlList(layout: SimLayout, io: Io, args: string[]): void {
  const names = args.filter((a) => !a.startsWith('-'));
  const r = readRunning(layout);
  requireXen(io, r);
  const now = Date.now();
  const doms = names.length > 0 ? [findDomain(io, r, names[0] as string)] : allDomains(r);
  io.out(LIST_HEADER + doms.map((d) => listRow(layout, d, now)).join(''));
}

function num(v: XlValue | undefined): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v);
  return undefined;
}

function xlCreate(layout: SimLayout, io: Io, args: string[]): void {
  let configFile: string | undefined;
  let paused = false;
  let quiet = false;
  let dryRun = false;
  const extra: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '-f') configFile = args[++i];
    else if (a.startsWith('--defconfig=')) configFile = a.slice('--defconfig='.length);
    else if (a === '-p') paused = true;
    else if (a === '-q' || a === '--quiet') quiet = true;
    else if (a === '-n' || a === '--dryrun') dryRun = true;
    else if (a === '-h') {
      io.out(USAGES.create as string);
      throw new XlExit(0);
    } else if (/^-[cVeFdA]$/.test(a) || a.startsWith('--')) continue;
    else if (a.startsWith('-')) fail(io, `option \`${a.slice(1)}' not supported.`, 2);
    else if (configFile === undefined && !a.includes('=')) configFile = a;
    else extra.push(a);
  }
  if (configFile === undefined) usageError(io, 'create', 1);
  if (!quiet) io.err(`Parsing config from ${configFile}\n`);
  let text: string;
  try {
    text = fs.readFileSync(configFile, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    fail(io, `Failed to read config file: ${configFile}: ${code === 'ENOENT' ? 'No such file or directory' : code === 'EACCES' ? 'Permission denied' : (e as Error).message}`);
  }
  let cfg: Map<string, XlValue>;
  try {
    cfg = parseXlConfig(text + (extra.length > 0 ? '\n' + extra.join('\n') + '\n' : ''), configFile);
  } catch (e) {
    if (!(e instanceof XlConfigError)) throw e;
    fail(io, `${e.message}\nFailed to parse config: Invalid argument`);
  }
  const name = cfg.get('name');
  if (typeof name !== 'string' || name === '') fail(io, 'Domain name must be specified.');
  const memory = num(cfg.get('memory')) ?? 128;
  const maxmem = Math.max(num(cfg.get('maxmem')) ?? memory, memory);
  const vcpus = num(cfg.get('vcpus')) ?? 1;
  if (dryRun) {
    io.out(JSON.stringify({ c_info: { name }, b_info: { max_vcpus: vcpus, max_memkb: maxmem * 1024, target_memkb: memory * 1024 } }, null, 4) + '\n');
    return;
  }
  const fault = readFaults(layout).createFails?.[name];
  if (fault) fail(io, fault.stderr, fault.exitStatus ?? 1);
  const machine = readMachine(layout);
  const hangs = (readFaults(layout).domainHangs ?? []).includes(name);
  let created: { id: number; boot: number; xen: { major: number; minor: number; extra: string } } | undefined;
  update(layout, io, (r) => {
    const domid = r.nextDomid;
    r.nextDomid = domid + 1;
    if (allDomains(r).some((d) => d.name === name)) {
      fail(
        io,
        `libxl: error: libxl_domain.c:1214:libxl__domain_rename: Domain ${domid}:Domain with name "${name}" already exists.\n` +
          `libxl: error: libxl_create.c:1323:initiate_domain_create: Domain ${domid}:cannot make domain: -6`,
      );
    }
    if (memory > freeMemory(layout, machine, r)) {
      // xl saves the new domid bump even on failure: the next domain gets the next id.
      writeJson(layout.running, r);
      fail(
        io,
        `xc: error: panic: xc_dom_boot.c:120: xc_dom_boot_mem_init: can't allocate low memory for domain: Out of memory\n` +
          `libxl: error: libxl_dom.c:593:libxl__build_dom: xc_dom_boot_mem_init failed: Cannot allocate memory\n` +
          `libxl: error: libxl_create.c:1758:domcreate_rebuild_done: Domain ${domid}:cannot (re-)build domain: -3\n` +
          `libxl: error: libxl_domain.c:1183:libxl__destroy_domid: Domain ${domid}:Non-existant domain\n` +
          `libxl: error: libxl_domain.c:1137:domain_destroy_callback: Domain ${domid}:Unable to destroy guest\n` +
          `libxl: error: libxl_domain.c:1064:domain_destroy_cb: Domain ${domid}:Destruction of domain failed`,
      );
    }
    r.domains.push({
      id: domid,
      name,
      memoryMiB: memory,
      maxMemoryMiB: maxmem,
      targetMiB: memory,
      vcpus,
      state: paused ? '--p---' : '-b----',
      createdAt: new Date().toISOString(),
      config: path.resolve(configFile as string),
      ...(machine.runnerUnit !== null ? { runner: null } : {}),
      ...(hangs ? { hung: true } : {}),
    });
    created = { id: domid, boot: r.boot, xen: r.hypervisor! };
  });
  if (!created) return;
  // The guest boots and systemd in it starts the runner unit; xl create returns meanwhile. A paused guest waits for unpause.
  const guestRoot = prepareDomainRoot(layout, name, created.xen);
  const kernel = cfg.get('kernel');
  // Its balloon driver, as its kernel has it: /proc/xen/balloon for a XenLinux vmlinuz-2.6.N-xen, else sysfs.
  initBalloon(guestRoot, {
    kind: balloonKindOfKernel(typeof kernel === 'string' ? kernel : undefined),
    memoryKb: memory * 1024,
    staticMaxKb: maxmem * 1024,
    // libxl__build_pre: xc_domain_setmaxmem(target + LIBXL_MAXMEM_CONSTANT).
    maxPagesKb: memory * 1024 + LIBXL_MAXMEM_CONSTANT_KB,
    inXenstore: true,
    dir: layout.dir,
    name,
  });
  if (!paused && !hangs) startRunner(layout, { id: created.id, name }, created.boot);
}

function xlDestroy(layout: SimLayout, io: Io, args: string[]): void {
  const force = args.includes('-f');
  const rest = args.filter((a) => !a.startsWith('-'));
  if (rest.length < 1) usageError(io, 'destroy', 1);
  let gone: DomainState | undefined;
  update(layout, io, (r) => {
    const d = findDomain(io, r, rest[0] as string);
    if (d.id === 0) {
      if (!force) {
        fail(io, 'Not destroying domain 0; use -f to force.\nThis can only be done when using a disaggregated hardware domain and toolstack.\n');
      }
      fail(io, 'libxl: error: libxl_domain.c:1156:libxl__destroy_domid: Domain 0:Cannot destroy the hardware domain: Permission denied');
    }
    r.domains = r.domains.filter((x) => x.id !== d.id);
    gone = d;
  });
  // The guest is gone at once, and everything in it.
  waitGone(killRunner(gone?.runner));
}

function xlShutdown(layout: SimLayout, io: Io, args: string[]): void {
  const rest = args.filter((a) => !a.startsWith('-'));
  if (rest.length < 1) usageError(io, 'shutdown', 1);
  let gone: DomainState | undefined;
  update(layout, io, (r) => {
    const d = findDomain(io, r, rest[0] as string);
    if (d.id === 0) fail(io, 'libxl: error: libxl_domain.c:806:libxl__domain_pvcontrol: Domain 0:Cannot shut down dom0 this way.');
    io.err(`Shutting down domain ${d.id}\n`);
    // A PV guest that honours the request is gone a moment later.
    r.domains = r.domains.filter((x) => x.id !== d.id);
    gone = d;
  });
  // Its services stopped on the way down, the runner with them.
  waitGone(killRunner(gone?.runner));
}

function xlPause(layout: SimLayout, io: Io, args: string[], pause: boolean): void {
  const cmd = pause ? 'pause' : 'unpause';
  if (args.length < 1) usageError(io, cmd, 1);
  let boots: { id: number; name: string; boot: number } | undefined;
  update(layout, io, (r) => {
    const d = findDomain(io, r, args[0] as string);
    // A guest created paused boots when first unpaused.
    if (!pause && d.id !== 0 && d.runner === null && !d.hung) boots = { id: d.id, name: d.name, boot: r.boot };
    const letters = d.state.split('');
    letters[2] = pause ? 'p' : '-';
    if (!pause && letters[0] === '-' && letters[1] === '-') letters[1] = 'b';
    d.state = letters.join('');
  });
  if (boots) startRunner(layout, { id: boots.id, name: boots.name }, boots.boot);
}

/** xl's parse_mem_size_kb: a bare number is MiB; t, g, m, k, b suffixes. KiB, or undefined. */
export function parseMemSizeKb(s: string): number | undefined {
  const m = /^(\d+)(.?)$/.exec(s);
  if (!m) return undefined;
  const n = Number(m[1]);
  switch ((m[2] ?? '').toLowerCase()) {
    case 't':
      return n * 1024 * 1024 * 1024;
    case 'g':
      return n * 1024 * 1024;
    case '':
    case 'm':
      return n * 1024;
    case 'k':
      return n;
    case 'b':
      return Math.floor(n / 1024);
    default:
      return undefined;
  }
}

/** xl_mem.c's own line after libxl's error (seen on a real Xen 4.17.5). */
function cannotSet(domid: number, size: string): string {
  return `cannot set domid ${domid} dynamic max memory to : ${size}`;
}

function xlMemSet(layout: SimLayout, io: Io, args: string[]): void {
  if (args.length < 2) usageError(io, 'mem-set', 2);
  const [q, size] = args as [string, string];
  const kb = parseMemSizeKb(size);
  if (kb === undefined) fail(io, `invalid memory size: ${size}`);
  update(layout, io, (r) => {
    const d = findDomain(io, r, q);
    const root = d.id === 0 ? layout.root : domainRoot(layout, d.name);
    const mib = kb / 1024;
    // libxl_set_memory_target's order and words, as a real Xen 4.17.5 prints them (no domain prefix).
    if (mib > d.maxMemoryMiB) {
      fail(io, `libxl: error: libxl_mem.c:278:libxl_set_memory_target: memory_dynamic_max must be less than or equal to memory_static_max\n${cannotSet(d.id, size)}`);
    }
    if (d.id === 0 && mib < LIBXL_MIN_DOM0_MEM_MIB) {
      fail(io, `libxl: error: libxl_mem.c:287:libxl_set_memory_target: New target ${kb} for dom0 is below the minimum threshold\n${cannotSet(d.id, size)}`);
    }
    // memory/target in xenstore (dom0's keys are written by its first mem-set): the domain's balloon driver takes it
    // as its target, and its allocation follows with a lag (xl list shows it; free memory is counted from it).
    const driven = balloonTargetKb(root) !== null;
    if (driven) {
      enterXenstore(root);
      setTargetKb(root, kb);
    }
    // xl's record, in step with the driver's target (which a planted target-not-applied leaves where it was).
    d.targetMiB = driven ? (balloonTargetKb(root) as number) / 1024 : mib;
    d.memoryMiB = d.targetMiB;
  });
}

const KNOWN_UNSIMULATED = new Set([
  'console', 'vncviewer', 'save', 'migrate', 'restore', 'reboot', 'rename', 'trigger', 'sysrq', 'debug-keys', 'top',
  'network-attach', 'network-list', 'network-detach', 'block-attach', 'block-list', 'block-detach', 'vcpu-list', 'vcpu-pin',
  'vcpu-set', 'sched-credit', 'sched-credit2', 'domid', 'domname', 'uptime', 'mem-max', 'cpupool-list', 'pci-assignable-list',
  'config-update', 'qemu-monitor-command', 'claims', 'psr-hwinfo', 'devd', 'dump-core', 'button-press', 'set-parameters',
]);

/** xl [global options] <subcommand> [args]: the exit status; output through io. */
/** root, or the ordinary user who runs the simulated host (standing in for root). */
function privilegedCaller(layout: SimLayout): boolean {
  const uid = process.geteuid?.() ?? 0;
  return uid === 0 || fs.statSync(layout.dir).uid === uid;
}

export function xlMain(layout: SimLayout, argv: string[], io: Io, faultsFor: (sub: string) => { exitStatus?: number; stderr?: string; hang?: boolean } | undefined, onHang: () => void): number | 'hang' {
  let i = 0;
  while (i < argv.length && /^-[vfNtT]+$/.test(argv[i] as string)) i++;
  const sub = argv[i];
  const args = argv.slice(i + 1);
  try {
    if (sub === undefined) {
      io.out('Usage xl [-vfNtT] <subcommand> [args]\n\nxl full list of subcommands:\n\n create  list  destroy  shutdown  pause  unpause  mem-set  info  dmesg  help\n');
      return 1;
    }
    if (!privilegedCaller(layout)) {
      // libxl_ctx_alloc cannot open /dev/xen/privcmd (0600 root).
      io.err('xencall: error: Could not obtain handle on privileged command interface: Permission denied\nlibxl: error: libxl.c:102:libxl_ctx_alloc: cannot open libxc handle: Permission denied\ncannot init xl context\n');
      return 1;
    }
    const fault = faultsFor(sub);
    if (fault) {
      if (fault.stderr) io.err(fault.stderr.endsWith('\n') ? fault.stderr : fault.stderr + '\n');
      if (fault.hang) {
        onHang();
        return 'hang';
      }
      return fault.exitStatus ?? 1;
    }
    if (args.includes('-h') && sub !== 'create') {
      io.out(USAGES[sub] ?? '');
      return 0;
    }
    switch (sub) {
      case 'info':
        xlInfo(layout, io);
        return 0;
      case 'dmesg':
        xlDmesg(layout, io);
        return 0;
      case 'list':
      case 'li':
        xlList(layout, io, args);
        return 0;
      case 'create':
        xlCreate(layout, io, args);
        return 0;
      case 'destroy':
        xlDestroy(layout, io, args);
        return 0;
      case 'shutdown':
        xlShutdown(layout, io, args);
        return 0;
      case 'pause':
        xlPause(layout, io, args, true);
        return 0;
      case 'unpause':
        xlPause(layout, io, args, false);
        return 0;
      case 'mem-set':
        xlMemSet(layout, io, args);
        return 0;
      case 'help':
        io.out(args[0] ? USAGES[args[0]] ?? '' : 'Usage xl [-vfNtT] <subcommand> [args]\n');
        return 0;
      default:
        if (KNOWN_UNSIMULATED.has(sub)) fail(io, `xl ${sub}: not simulated by the simulated Xen host`);
        fail(io, 'command not implemented');
    }
  } catch (e) {
    if (e instanceof XlExit) return e.status;
    throw e;
  }
}
