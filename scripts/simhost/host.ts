/**
 * The simulated Xen host (LAVA's DummySys idea): a fake machine behind the
 * agent's real boundary. The agent's own code runs real commands found on
 * PATH (xl, update-grub, grub-reboot, grub-set-default, grub-editenv, reboot,
 * systemctl) and reads and writes real files under a root directory (/boot,
 * GRUB's grub.cfg and grubenv, /var/lib/xentest); this class makes such a
 * machine in a directory D and lets tests watch and disturb it.
 *
 *   D/root/      the machine's filesystem      D/bin/    the fake commands
 *   D/state/     running.json, faults.json, boots.jsonl, machine.json
 *   D/log/       commands.jsonl, resume-<n>.log, boot.log
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import {
  allocateBootNumber,
  bootMachine,
  finishInterruptedBoots,
  lockHolderPid,
  newBootRecord,
  startDom0Runner,
  trackedProcesses,
} from './boot.js';
import { appendJsonLine, readJson, readJsonLines, withFileLock, writeFileReplacing, writeJson } from './fsutil.js';
import { formatEnvBlock, readEnvBlock, setVar } from './grubenv.js';
import { flattenMenu, parseGrubCfg } from './grubmenu.js';
import { grubMkconfig } from './grubmkconfig.js';
import { readMachine, simLayout, type SimLayout } from './layout.js';
import { balloonHookEnv } from './balloon.js';
import { killProcessTree, machineProcesses, processAlive } from './procs.js';
import { domainRoot, killRunner, liveRunnerPids, removeDomain, runnerLogFile, setGuestHostname } from './runners.js';
import type { BootRecord, CommandRecord, DomainState, Faults, MachineConfig, RunnerState, RunningState, SimXenVersion } from './types.js';
import { DEFAULT_SHARED_DIR } from '../../shared/domaindir.js';
import { buildPackagedImage } from './xentree.js';

export type { BootAttempt, BootRecord, CommandRecord, DomainState, Faults, HypervisorIdentity, RunnerState, RunningState, SimXenVersion, XlFault } from './types.js';
export { DOM0_NAME } from './runners.js';

const SIMHOST_DIST = path.dirname(fileURLToPath(import.meta.url));
/** dist/scripts/simhost -> the repository. */
const REPO_ROOT = path.resolve(SIMHOST_DIST, '../../..');

export const FAKE_COMMANDS = ['xl', 'update-grub', 'grub-mkconfig', 'grub-editenv', 'grub-reboot', 'grub-set-default', 'reboot', 'systemctl', 'xenstore-read'] as const;
/** What a guest has of them (D/guest-bin, on its PATH): xenstore-read, for its own keys; no toolstack. */
export const GUEST_COMMANDS = ['xenstore-read'] as const;

export interface SimHostOptions {
  /** The packaged hypervisor the machine starts with (default 4.17.5). */
  installed?: SimXenVersion;
  /** Its image name in /boot (default xen-<major>.<minor>-amd64.gz, as Debian names it). */
  installedImage?: string;
  /** The dom0 kernel release (default 6.1.0-18-amd64). */
  kernel?: string;
  /** GRUB_CMDLINE_XEN_DEFAULT (default dom0_mem=1024M,max:1024M). */
  xenCommandLine?: string;
  hostname?: string;
  /** dom0's balloon interface (default sysfs; a guest's follows from its kernel: vmlinuz-2.6.N-xen has /proc/xen/balloon). */
  dom0Balloon?: 'sysfs' | 'proc' | 'none';
  totalMemoryMiB?: number;
  nrCpus?: number;
  /** How long a reboot waits for the xentest lock holder before killing it (default 20000, systemd's final kill). */
  shutdownTimeoutMs?: number;
  /** The resume unit read at every boot (default the repository's init/xentest-resume.service). */
  resumeUnit?: string;
  /** Extra environment for the resume unit's command. */
  resumeEnv?: Record<string, string>;
  /** What /usr/local/bin/xentest points at (default the repository's bin/xentest.js, as scripts/install links it). */
  xentestBin?: string;
  /**
   * The runner unit started in dom0 at every boot (SimHost.create's boot 0 included) and in every domain
   * `xl create` makes. Default: the repository's init/xentest-runner.service when sharedDir is given, else
   * none (null: no runner is ever started).
   */
  runnerUnit?: string | null;
  /** Extra environment for every runner. */
  runnerEnv?: Record<string, string>;
  /** The shared directory every runner gets as XENTEST_SHARED_DIR (default the machine's own /xentest/shared, under its root). */
  sharedDir?: string;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A few KiB standing in for a file whose content nobody reads (a bzImage, an initramfs). */
function filler(label: string, bytes: number): Buffer {
  const line = Buffer.from(`${label}\n`);
  return Buffer.concat(Array.from({ length: Math.ceil(bytes / line.length) }, () => line)).subarray(0, bytes);
}

export class SimHost {
  readonly dir: string;
  readonly root: string;
  readonly binDir: string;
  private readonly layout: SimLayout;

  private constructor(dir: string) {
    this.layout = simLayout(dir);
    this.dir = this.layout.dir;
    this.root = this.layout.root;
    this.binDir = this.layout.binDir;
  }

  /** An existing machine (made by create, perhaps by another process). */
  static open(dir: string): SimHost {
    const host = new SimHost(dir);
    readMachine(host.layout);
    return host;
  }

  /**
   * A machine with one good hypervisor installed (a packaged Xen, default
   * 4.17.5 as /boot/xen-4.17-amd64.gz) and a dom0-capable Linux kernel, grub.cfg
   * generated, saved_entry naming that Xen entry, booted into it (boot 0).
   */
  static create(dir: string, opts: SimHostOptions = {}): SimHost {
    const host = new SimHost(dir);
    const L = host.layout;
    if (fs.existsSync(L.dir) && fs.readdirSync(L.dir).length > 0) throw new Error(`${L.dir} is not empty: a simulated machine needs a directory of its own`);
    const version = opts.installed ?? { major: 4, minor: 17, extra: '.5' };
    const imageName = opts.installedImage ?? `xen-${version.major}.${version.minor}-amd64.gz`;
    const kernel = opts.kernel ?? '6.1.0-18-amd64';
    const machine: MachineConfig = {
      uuid: randomUUID(),
      hostname: opts.hostname ?? 'xentest-sim',
      device: '/dev/sda1',
      totalMemoryMiB: opts.totalMemoryMiB ?? 8192,
      ...(opts.dom0Balloon ? { dom0Balloon: opts.dom0Balloon } : {}),
      nrCpus: opts.nrCpus ?? 4,
      shutdownTimeoutMs: opts.shutdownTimeoutMs ?? 20_000,
      resumeUnit: path.resolve(opts.resumeUnit ?? path.join(REPO_ROOT, 'init/xentest-resume.service')),
      resumeEnv: opts.resumeEnv ?? {},
      // Opt-in: a runner with no work waits (the real one for 30 min), so only machines meant to run domains start them.
      runnerUnit:
        opts.runnerUnit === null
          ? null
          : opts.runnerUnit !== undefined
            ? path.resolve(opts.runnerUnit)
            : opts.sharedDir !== undefined
              ? path.join(REPO_ROOT, 'init/xentest-runner.service')
              : null,
      runnerEnv: opts.runnerEnv ?? {},
      sharedDir: path.resolve(opts.sharedDir ?? path.join(L.root, DEFAULT_SHARED_DIR)),
      simhostDist: SIMHOST_DIST,
      node: process.execPath,
      kernelBuild: '#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)',
      createdAt: new Date().toISOString(),
    };
    for (const d of [L.root, L.binDir, L.guestBinDir, L.stateDir, L.logDir, L.bootDir, path.dirname(L.grubCfg), path.dirname(L.defaultGrub), L.xentestStateDir, path.dirname(L.xentestBin), L.procs, L.booting]) {
      fs.mkdirSync(d, { recursive: true });
    }
    writeJson(L.machine, machine);
    writeJson(L.faults, {});
    // dom0's name, where the agent reads it on a real machine.
    fs.mkdirSync(path.join(L.root, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(L.root, 'etc/hostname'), `${machine.hostname}\n`);

    // The packaged hypervisor, built by the real compiler with a distribution's identity.
    const packaged = buildPackagedImage(
      { version },
      { whoami: 'pkg-xen-devel', domain: 'lists.alioth.debian.org', date: 'Tue Aug 12 10:00:00 UTC 2025', time: '10:00:00', host: 'debian' },
    );
    fs.writeFileSync(path.join(L.bootDir, imageName), packaged.gz);
    fs.writeFileSync(path.join(L.bootDir, imageName.replace(/\.gz$/, '') + '.config'), packaged.config);
    // The dom0 kernel, as linux-image-amd64 installs it; its config says it can be dom0, which 20_linux_xen checks.
    fs.writeFileSync(path.join(L.bootDir, `vmlinuz-${kernel}`), filler(`simulated Linux kernel ${kernel} (bzImage)`, 8192));
    fs.writeFileSync(path.join(L.bootDir, `initrd.img-${kernel}`), zlib.gzipSync(filler(`simulated initramfs for ${kernel}`, 4096)));
    fs.writeFileSync(path.join(L.bootDir, `config-${kernel}`), `#\n# Linux/x86 ${kernel} Kernel Configuration\n#\nCONFIG_X86_64=y\nCONFIG_XEN=y\nCONFIG_XEN_PV=y\nCONFIG_XEN_DOM0=y\nCONFIG_XEN_BALLOON=y\n`);
    fs.writeFileSync(path.join(L.bootDir, `System.map-${kernel}`), 'ffffffff81000000 T _text\n');
    fs.writeFileSync(
      L.defaultGrub,
      [
        "# If you change this file, run 'update-grub' afterwards to update",
        '# /boot/grub/grub.cfg.',
        '# For full documentation of the options in this file, see:',
        "#   info -f grub -n 'Simple configuration'",
        '',
        'GRUB_DEFAULT=saved',
        'GRUB_TIMEOUT=5',
        'GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`',
        'GRUB_CMDLINE_LINUX_DEFAULT="quiet"',
        'GRUB_CMDLINE_LINUX=""',
        `GRUB_CMDLINE_XEN_DEFAULT="${opts.xenCommandLine ?? 'dom0_mem=1024M,max:1024M'}"`,
        '',
      ].join('\n'),
    );
    fs.symlinkSync(path.resolve(opts.xentestBin ?? path.join(REPO_ROOT, 'bin/xentest.js')), L.xentestBin);
    // Installed beside xentest, as scripts/install links it.
    fs.symlinkSync(path.join(REPO_ROOT, 'bin/xenfc.js'), path.join(path.dirname(L.xentestBin), 'xenfc'));
    for (const [dir, cmd] of [...FAKE_COMMANDS.map((c) => [L.binDir, c]), ...GUEST_COMMANDS.map((c) => [L.guestBinDir, c])] as Array<[string, string]>) {
      const file = path.join(dir, cmd);
      fs.writeFileSync(
        file,
        `#!/bin/sh\n# ${cmd} of the simulated Xen host ${L.dir}\n: "\${SIMHOST_DIR:=${L.dir}}"\nexport SIMHOST_DIR\nexec ${shellQuote(machine.node)} ${shellQuote(path.join(SIMHOST_DIST, 'cli.js'))} ${cmd} "$@"\n`,
      );
      fs.chmodSync(file, 0o755);
    }

    // grub-install's empty environment block, update-grub, grub-set-default on the packaged Xen's entry.
    fs.writeFileSync(L.grubEnv, formatEnvBlock([]));
    const { config } = grubMkconfig(L.root, { uuid: machine.uuid, device: machine.device });
    writeFileReplacing(L.grubCfg, config);
    const entry = flattenMenu(parseGrubCfg(config).menu).find(
      (e) => e.path.length === 3 && (e.path[2]?.commands ?? []).some((c) => c[0] === 'multiboot2' && c[1] === `/boot/${imageName}`) && !/recovery mode/.test(e.path[2]?.title ?? ''),
    );
    if (!entry) throw new Error(`bug: the generated grub.cfg has no advanced entry for /boot/${imageName}`);
    const saved = entry.path.map((n) => n.title.replace(/>/g, '>>')).join('>');
    writeFileReplacing(L.grubEnv, formatEnvBlock(setVar([], 'saved_entry', saved)));

    fs.writeFileSync(L.bootCounter, '0\n');
    const record = newBootRecord(0, 'create', new Date().toISOString());
    bootMachine(L, record);
    record.finishedAt = new Date().toISOString();
    if (record.down || record.fellBack) throw new Error(`bug: the new machine did not boot its packaged Xen: ${record.reason}`);
    appendJsonLine(L.boots, record);
    startDom0Runner(L, record);
    return host;
  }

  /** For the agent and the commands: PATH starts with the fake commands; the machine's root and state directory. */
  env(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
    const machine = readMachine(this.layout);
    return balloonHookEnv({
      ...base,
      PATH: [this.binDir, path.dirname(machine.node), base.PATH].filter((p) => p).join(':'),
      SIMHOST_DIR: this.dir,
      XENTEST_STATE_DIR: this.layout.xentestStateDir,
      XENTEST_ROOT: this.root,
    });
  }

  /** For a command inside guest `name`, as its runner's tests run: its root, no toolstack on PATH (xenstore-read only), its balloon driver. */
  guestEnv(name: string, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
    const machine = readMachine(this.layout);
    const root = domainRoot(this.layout, name);
    return balloonHookEnv({
      ...base,
      PATH: [this.layout.guestBinDir, path.dirname(machine.node), base.PATH].filter((p) => p).join(':'),
      SIMHOST_DIR: this.dir,
      XENTEST_STATE_DIR: path.join(root, 'var/lib/xentest'),
      XENTEST_ROOT: root,
    });
  }

  /** Replace the injected faults (an empty object clears them). */
  setFaults(f: Faults): void {
    withFileLock(this.layout.faults, () => writeJson(this.layout.faults, f));
  }

  faults(): Faults {
    return readJson<Faults>(this.layout.faults) ?? {};
  }

  running(): RunningState {
    const r = readJson<RunningState>(this.layout.running);
    if (!r) throw new Error(`${this.layout.running} is missing`);
    return r;
  }

  /** Finished boots, in boot order. */
  boots(): BootRecord[] {
    return readJsonLines<BootRecord>(this.layout.boots).sort((a, b) => a.n - b.n);
  }

  /** GRUB's environment block as GRUB would read it. */
  grubEnv(): Record<string, string> {
    return Object.fromEntries(readEnvBlock(this.layout.grubEnv));
  }

  resumeLog(n: number): string {
    const file = path.join(this.layout.logDir, `resume-${n}.log`);
    return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  }

  /** Resolves when boot n has finished (its resume command has exited, or it was recorded without one). */
  async waitForBoot(n: number, timeoutMs: number): Promise<BootRecord> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const b = this.boots().find((x) => x.n === n);
      if (b) return b;
      if (Date.now() > deadline) {
        const bootLog = path.join(this.layout.logDir, 'boot.log');
        const tail = fs.existsSync(bootLog) ? fs.readFileSync(bootLog, 'utf8').split('\n').slice(-10).join('\n') : '';
        const inProgress = fs.existsSync(path.join(this.layout.booting, `${n}.json`)) ? ' (it is in progress: its resume command has not exited)' : '';
        throw new Error(`boot ${n} of ${this.dir} did not finish within ${timeoutMs} ms${inProgress}; boots so far: ${this.boots().map((b) => b.n).join(', ')}\n${tail}`);
      }
      await sleep(40);
    }
  }

  /** The shared directory the machine's runners are given (XENTEST_SHARED_DIR). */
  get sharedDir(): string {
    return readMachine(this.layout).sharedDir;
  }

  /** A guest's filesystem (its runner's XENTEST_ROOT): D/domains/<name>/root. */
  domainRoot(name: string): string {
    return domainRoot(this.layout, name);
  }

  /**
   * A guest's hostname, as its own /etc/hostname says: what its runner takes as its name from its next boot
   * (`xl create`) on. By default it is the guest's xl name.
   */
  setGuestHostname(name: string, hostname: string): void {
    setGuestHostname(this.layout, name, hostname);
  }

  /** A domain by name (Domain-0 for dom0), as running.json has it now. */
  domain(name: string): DomainState | undefined {
    const r = this.running();
    return [...(r.dom0 ? [r.dom0] : []), ...r.domains].find((d) => d.name === name);
  }

  /** The runners running now, pid by domain name (dom0's as Domain-0). */
  runnerPids(): Record<string, number> {
    return liveRunnerPids(this.layout);
  }

  /** A domain's runner output at boot n (default the current boot). */
  runnerLog(name: string, n: number = this.running().boot): string {
    const file = runnerLogFile(this.layout, name, n);
    return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  }

  /** Resolves with the runner's record once the domain's runner has exited by itself (exit status or signal recorded) and is not to be restarted. */
  async waitForRunnerExit(name: string, timeoutMs: number): Promise<RunnerState> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const run = this.domain(name)?.runner;
      if (run && run.finishedAt !== null && !run.restartAt) return run;
      if (Date.now() > deadline) throw new Error(`the runner of ${name} did not finish within ${timeoutMs} ms (runner: ${JSON.stringify(run)})`);
      await sleep(25);
    }
  }

  /** The guest crashes: its runner's process group is SIGKILLed and the domain leaves the list. False if there is no such guest. */
  killDomain(name: string): boolean {
    return removeDomain(this.layout, name) !== undefined;
  }

  /** Every process of the machine at once, as a power cut ends them: boots in progress, resume units, runners, the lock holder. */
  private async cutPower(): Promise<void> {
    const victims = new Set<number>();
    for (const p of trackedProcesses(this.layout)) for (const pid of killProcessTree(p.pid)) victims.add(pid);
    const r = readJson<RunningState>(this.layout.running);
    for (const d of [...(r?.dom0 ? [r.dom0] : []), ...(r?.domains ?? [])]) for (const pid of killRunner(d.runner)) victims.add(pid);
    const holder = lockHolderPid(this.layout);
    if (holder !== undefined) for (const pid of killProcessTree(holder)) victims.add(pid);
    for (const p of machineProcesses(path.resolve(this.dir))) for (const pid of killProcessTree(p)) victims.add(pid);
    const deadline = Date.now() + 5000;
    while ([...victims].some(processAlive) && Date.now() < deadline) await sleep(10);
    finishInterruptedBoots(this.layout);
  }

  /** A power cut and power-on: boots (next_entry once, else the default) and runs the resume unit as at any boot. */
  async powerCycle(timeoutMs = 120_000): Promise<BootRecord> {
    await this.cutPower();
    const machine = readMachine(this.layout);
    const n = allocateBootNumber(this.layout);
    fs.mkdirSync(this.layout.logDir, { recursive: true });
    const log = fs.openSync(path.join(this.layout.logDir, 'boot.log'), 'a');
    const child = spawn(machine.node, [path.join(SIMHOST_DIST, 'cli.js'), 'boot', '--cause=power-cycle', `--n=${n}`, '--no-shutdown', `--requested-at=${new Date().toISOString()}`], {
      detached: true,
      stdio: ['ignore', log, log],
      env: { ...process.env, SIMHOST_DIR: this.dir },
      cwd: '/',
    });
    child.unref();
    fs.closeSync(log);
    return this.waitForBoot(n, timeoutMs);
  }

  /** Power off and stay off: for test cleanup (no process of the machine survives). */
  async powerOff(): Promise<void> {
    await this.cutPower();
    withFileLock(this.layout.running, () => {
      const r = readJson<RunningState>(this.layout.running);
      if (r) writeJson(this.layout.running, { ...r, kind: 'down', hypervisor: null, kernel: null, dom0: null, domains: [], down: 'powered off' } satisfies RunningState);
    });
  }

  /** Every fake command run so far, in order. */
  commandLog(): CommandRecord[] {
    return readJsonLines<CommandRecord>(this.layout.commands);
  }
}
