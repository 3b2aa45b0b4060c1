/**
 * The runner in each domain (init/xentest-runner.service, `xentest run`),
 * started as its unit would start it inside a real guest: dom0's at every
 * boot, a guest's once `xl create` has made the domain. Each runs detached
 * in a process group of its own under a small supervisor (`cli.js
 * domain-runner`), which records its pid in running.json's domain entry and,
 * when it exits while its domain lives on, its exit status.
 *
 *   D/domains/<name>/root/         the guest's filesystem (its XENTEST_ROOT)
 *   D/log/runner-<name>-<n>.log    its output at boot n (dom0 is Domain-0)
 *
 * A guest's runner dies with its domain (xl destroy, xl shutdown, a crash),
 * and every runner dies with the host (reboot, power cut). A runner that
 * ends while its domain lives on is started again as the unit's Restart= and
 * RestartSec= say (systemd's rules: on-abnormal restarts one killed by a
 * signal other than SIGHUP, SIGINT, SIGTERM or SIGPIPE, never one that
 * exited). Nothing is restarted on the way down: a destroyed or crashed
 * guest has left the domain list before its runner is killed, and a reboot
 * or power cut kills the supervisors along with the runners.
 *
 * A guest's hostname is its own: the /etc/hostname on its disk
 * (D/domains/<name>/root/etc/hostname), which is the xl name on a fresh disk
 * and stays whatever it was set to (SimHost.setGuestHostname) across creates.
 */
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readUnit, readUnitExecStart } from '../../agent/units.js';
import { isNodeScript, trackProcess, unitEnvironment, unitEnvironmentLines, untrackProcess } from './boot.js';
import { readJson, sleepSync, withFileLock, writeFileReplacing, writeJson } from './fsutil.js';
import { domainRoot, fileSafeName, hostPath, readMachine, type SimLayout } from './layout.js';
import { balloonHookEnv } from './balloon.js';
import { killProcessTree, processAlive, processStartTime } from './procs.js';
import type { DomainState, MachineConfig, RunnerState, RunningState } from './types.js';

export const DOM0_NAME = 'Domain-0';

export { domainRoot };

export function runnerLogFile(layout: SimLayout, name: string, boot: number): string {
  return path.join(layout.logDir, `runner-${fileSafeName(name)}-${boot}.log`);
}

/** A guest's filesystem as its kernel shows it to the runner: an unprivileged guest (empty capabilities), a fresh boot id; its disk's hostname (the xl name on a fresh disk). */
export function prepareDomainRoot(layout: SimLayout, name: string, xen: { major: number; minor: number; extra: string }): string {
  const root = domainRoot(layout, name);
  for (const d of ['proc/xen', 'proc/sys/kernel/random', 'etc']) fs.mkdirSync(path.join(root, d), { recursive: true });
  writeFileReplacing(path.join(root, 'proc/xen/capabilities'), '');
  writeSysHypervisor(root, xen);
  writeFileReplacing(path.join(root, 'proc/sys/kernel/random/boot_id'), `${randomUUID()}\n`);
  if (!fs.existsSync(path.join(root, 'etc/hostname'))) writeFileReplacing(path.join(root, 'etc/hostname'), `${name}\n`);
  return root;
}

/** /sys/hypervisor/version as Linux shows it in every Xen domain (xenfc reads which Xen it talks to there). */
export function writeSysHypervisor(root: string, xen: { major: number; minor: number; extra: string }): void {
  const dir = path.join(root, 'sys/hypervisor/version');
  fs.mkdirSync(dir, { recursive: true });
  writeFileReplacing(path.join(dir, 'major'), `${xen.major}\n`);
  writeFileReplacing(path.join(dir, 'minor'), `${xen.minor}\n`);
  writeFileReplacing(path.join(dir, 'extra'), `${xen.extra}\n`);
}

/** Set a guest's hostname on its disk, as its administrator would (it takes effect at its next boot, `xl create`). */
export function setGuestHostname(layout: SimLayout, name: string, hostname: string): void {
  if (!/^[^\s/]+$/.test(hostname)) throw new Error(`"${hostname}" is not a hostname`);
  writeFileReplacing(path.join(domainRoot(layout, name), 'etc/hostname'), `${hostname}\n`);
}

/** The hostname a guest booted with: the first line of its /etc/hostname. */
function guestHostname(root: string, name: string): string {
  try {
    return fs.readFileSync(path.join(root, 'etc/hostname'), 'utf8').split('\n')[0]?.trim() || name;
  } catch {
    return name;
  }
}

/** Signals systemd counts as a clean exit (besides exit status 0). */
const CLEAN_SIGNALS = new Set(['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGPIPE']);

export interface RestartPolicy {
  /** Restart= (no, always, on-success, on-failure, on-abnormal, on-abort, on-watchdog). */
  restart: string;
  /** RestartSec=, in milliseconds (systemd's default 100 ms). */
  delayMs: number;
}

/** The unit's Restart= and RestartSec= (the last assignment of each wins, as in systemd). */
export function readRestartPolicy(unitFile: string): RestartPolicy {
  const unit = readUnit(unitFile);
  const restart = unit.values('Service', 'Restart').pop() ?? 'no';
  const known = ['no', 'always', 'on-success', 'on-failure', 'on-abnormal', 'on-abort', 'on-watchdog'];
  if (!known.includes(restart)) throw new Error(`${unitFile}: Restart=${restart} is not one of ${known.join(', ')}`);
  const sec = unit.values('Service', 'RestartSec').pop();
  return { restart, delayMs: sec === undefined ? 100 : parseTimeSpan(sec, unitFile) };
}

/** A systemd time span as RestartSec= takes it: "2", "2s", "500ms", "1min 30s". */
function parseTimeSpan(text: string, file: string): number {
  const units: Record<string, number> = { '': 1000, us: 0.001, ms: 1, s: 1000, sec: 1000, second: 1000, seconds: 1000, m: 60_000, min: 60_000, minute: 60_000, minutes: 60_000, h: 3_600_000, hr: 3_600_000, hour: 3_600_000, hours: 3_600_000 };
  let ms = 0;
  const parts = text.trim().split(/\s+/).join('').match(/\d+(?:\.\d+)?[a-z]*/g);
  if (!parts || parts.join('') !== text.replace(/\s+/g, '')) throw new Error(`${file}: "${text}" is not a time span`);
  for (const part of parts) {
    const m = /^(\d+(?:\.\d+)?)([a-z]*)$/.exec(part)!;
    const unit = units[m[2] as string];
    if (unit === undefined) throw new Error(`${file}: "${text}" is not a time span (unknown unit "${m[2]}")`);
    ms += Number(m[1]) * unit;
  }
  return ms;
}

/** Whether systemd would start the service again after this end, under Restart=`restart`. */
export function restartsAfter(restart: string, end: { code: number | null; signal: string | null }): boolean {
  const bySignal = end.signal !== null;
  const clean = bySignal ? CLEAN_SIGNALS.has(end.signal as string) : end.code === 0;
  switch (restart) {
    case 'always':
      return true;
    case 'on-success':
      return clean;
    case 'on-failure':
      return !clean;
    case 'on-abnormal':
    case 'on-abort':
      return bySignal && !clean;
    default:
      return false;
  }
}

interface RunnerSpec {
  command: string[];
  ran: string[];
  env: NodeJS.ProcessEnv;
  root: string;
}

/** How the unit runs in that domain: its ExecStart with /usr/local/bin/xentest under the machine root, a service's environment. */
function runnerSpec(layout: SimLayout, machine: MachineConfig, unitFile: string, domain: { id: number; name: string }): RunnerSpec {
  const command = readUnitExecStart(unitFile);
  const [exe, ...args] = command as [string, ...string[]];
  const hostExe = exe.startsWith('/') ? hostPath(layout, exe) : exe;
  const ran = isNodeScript(hostExe) ? [machine.node, hostExe, ...args] : [hostExe, ...args];
  const unitEnv = unitEnvironmentLines(unitFile);
  const isDom0 = domain.id === 0;
  const root = isDom0 ? layout.root : domainRoot(layout, domain.name);
  let env: NodeJS.ProcessEnv;
  if (isDom0) {
    // dom0's runner sees the machine as the resume unit does (the fake xl and GRUB tools on PATH), without the resume unit's extras.
    env = { ...unitEnvironment(layout, { ...machine, resumeEnv: {} }, unitEnv) };
  } else {
    // A guest has no toolstack of its own: of the fake commands only xenstore-read (its own keys) is on its PATH.
    env = {
      PATH: `${layout.guestBinDir}:${path.dirname(machine.node)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
      LANG: 'C.UTF-8',
      SIMHOST_DIR: layout.dir,
      XENTEST_STATE_DIR: path.join(root, 'var/lib/xentest'),
      ...unitEnv,
    };
  }
  Object.assign(env, machine.runnerEnv, {
    XENTEST_HOSTNAME: isDom0 ? machine.hostname : guestHostname(root, domain.name),
    XENTEST_SHARED_DIR: machine.sharedDir,
    XENTEST_ROOT: root,
  });
  return { command, ran, env: balloonHookEnv(env), root };
}

function sameDomain(r: RunningState, boot: number, id: number, name: string): DomainState | undefined {
  if (r.boot !== boot || r.kind === 'down') return undefined;
  if (id === 0) return r.dom0 ?? undefined;
  return r.domains.find((d) => d.id === id && d.name === name);
}

/**
 * Start the runner of domain (id, name) of boot `boot`: a detached supervisor
 * that starts it and waits for it. Returns once the runner's pid is in
 * running.json (or it failed to start, or the domain went meanwhile).
 */
export function startRunner(layout: SimLayout, domain: { id: number; name: string }, boot: number, waitMs = 15_000): void {
  const machine = readMachine(layout);
  if (machine.runnerUnit === null) return;
  fs.mkdirSync(layout.logDir, { recursive: true });
  const log = fs.openSync(runnerLogFile(layout, domain.name, boot), 'a');
  const child = spawn(machine.node, [path.join(machine.simhostDist, 'cli.js'), 'domain-runner', `--boot=${boot}`, `--id=${domain.id}`, `--name=${domain.name}`], {
    detached: true,
    stdio: ['ignore', log, log],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', SIMHOST_DIR: layout.dir },
    cwd: '/',
  });
  fs.closeSync(log);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) return;
  // Tracked at once: a power cut from now on ends it with whatever it started.
  trackProcess(layout, pid, 'supervisor', boot);
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    const r = readJson<RunningState>(layout.running);
    const d = r && sameDomain(r, boot, domain.id, domain.name);
    if (!d || d.runner) return;
    if (!processAlive(pid)) return;
    sleepSync(5);
  }
}

/**
 * The supervisor (`cli.js domain-runner`): start the runner, record its pid,
 * wait, record how it ended, and start it again if the unit's Restart= says
 * so and the domain is still there.
 */
export async function superviseRunner(layout: SimLayout, boot: number, id: number, name: string): Promise<number> {
  const machine = readMachine(layout);
  trackProcess(layout, process.pid, 'supervisor', boot);
  try {
    if (machine.runnerUnit === null) return 0;
    const logFile = runnerLogFile(layout, name, boot);
    let spec: RunnerSpec;
    let policy: RestartPolicy;
    try {
      spec = runnerSpec(layout, machine, machine.runnerUnit, { id, name });
      policy = readRestartPolicy(machine.runnerUnit);
    } catch (e) {
      process.stdout.write(`simhost: ${name}: cannot read the runner unit: ${(e as Error).message}\n`);
      recordRunner(layout, boot, id, name, () => ({
        command: [], ran: [], pid: null, startTime: null, root: '', log: logFile, startedAt: new Date().toISOString(),
        exitStatus: 1, signal: null, finishedAt: new Date().toISOString(), error: (e as Error).message,
      }));
      return 1;
    }
    const unitName = path.basename(machine.runnerUnit);
    const [file, ...argv] = spec.ran as [string, ...string[]];
    let previousPid: number | null | undefined;
    for (let restarts = 0; ; restarts++) {
      const fd = fs.openSync(logFile, 'a');
      let child: ReturnType<typeof spawn> | undefined;
      let spawnError: Error | undefined;
      // Under the lock: a domain destroyed before this point never gets a runner, one destroyed after finds its pid.
      const started = withFileLock(layout.running, () => {
        const r = readJson<RunningState>(layout.running);
        const d = r && sameDomain(r, boot, id, name);
        if (!r || !d) return false;
        // Started already (a second unpause), unless this is the restart this supervisor announced.
        if (d.runner && !(restarts > 0 && d.runner.pid === previousPid && d.runner.restartAt)) return false;
        fs.writeSync(fd, `-- simhost boot ${boot}: domain ${name} (id ${id}): ${unitName}: ${restarts > 0 ? `restart ${restarts}: ` : ''}ExecStart=${spec.command.join(' ')} (runs ${spec.ran.join(' ')})\n`);
        child = spawn(file, argv, { cwd: '/', env: spec.env, stdio: ['ignore', fd, fd], detached: true });
        child.on('error', (e) => (spawnError = e));
        const pid = child.pid ?? null;
        if (pid !== null) trackProcess(layout, pid, 'runner', boot);
        d.runner = {
          command: spec.command, ran: spec.ran, pid, startTime: pid !== null ? processStartTime(pid) ?? null : null, root: spec.root, log: logFile,
          startedAt: new Date().toISOString(), exitStatus: null, signal: null, finishedAt: null, restarts, restartAt: null,
        };
        writeJson(layout.running, r);
        return true;
      });
      if (!started || !child) {
        fs.closeSync(fd);
        return 0;
      }
      const c = child;
      const done = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        c.on('error', (e) => resolve({ code: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 203 : 126, signal: null }));
        c.on('exit', (code, signal) => resolve({ code, signal }));
      });
      if (c.pid !== undefined) untrackProcess(layout, c.pid);
      const err = spawnError as Error | undefined;
      const restartAt = restartsAfter(policy.restart, done) ? new Date(Date.now() + policy.delayMs).toISOString() : null;
      // Recorded only while the domain lives on: one destroyed (or a host going down) took its runner with it, for good.
      const again =
        recordRunner(layout, boot, id, name, (prev) =>
          prev ? { ...prev, exitStatus: done.code, signal: done.signal, finishedAt: new Date().toISOString(), restartAt, ...(err ? { error: err.message } : {}) } : undefined,
        ) && restartAt !== null;
      if (err) fs.writeSync(fd, `simhost: cannot start ${file}: ${err.message}\n`);
      fs.writeSync(
        fd,
        `-- simhost boot ${boot}: domain ${name}: runner ${done.signal ? `killed by ${done.signal}` : `exit status ${done.code}`}` +
          `${again ? `; Restart=${policy.restart}: starting it again in ${policy.delayMs / 1000} s` : ''}\n`,
      );
      fs.closeSync(fd);
      if (!again) return 0;
      previousPid = c.pid ?? null;
      await new Promise((resolve) => setTimeout(resolve, policy.delayMs));
    }
  } finally {
    untrackProcess(layout, process.pid);
  }
}

/** Replace the domain's runner record; false if the domain (of that boot) is gone or fn gave nothing. */
function recordRunner(layout: SimLayout, boot: number, id: number, name: string, fn: (prev: RunnerState | null | undefined) => RunnerState | undefined): boolean {
  return withFileLock(layout.running, () => {
    const r = readJson<RunningState>(layout.running);
    const d = r && sameDomain(r, boot, id, name);
    if (!r || !d) return false;
    const next = fn(d.runner);
    if (!next) return false;
    d.runner = next;
    writeJson(layout.running, r);
    return true;
  });
}

/** SIGKILL a runner's process group (and its process tree, if it is still that process). Returns the pids signalled. */
export function killRunner(runner: RunnerState | null | undefined): number[] {
  if (!runner || runner.pid === null) return [];
  const pid = runner.pid;
  const killed: number[] = [];
  if (runner.startTime !== null && processStartTime(pid) === runner.startTime) killed.push(...killProcessTree(pid));
  try {
    // The group outlives its leader while a member remains, and its id is not reused meanwhile.
    process.kill(-pid, 'SIGKILL');
    if (!killed.includes(pid)) killed.push(pid);
  } catch {
    // No such group: all gone.
  }
  return killed;
}

/** Wait (briefly) until those pids are gone. */
export function waitGone(pids: number[], ms = 5000): void {
  const deadline = Date.now() + ms;
  while (pids.some(processAlive) && Date.now() < deadline) sleepSync(5);
}

/** Remove a guest from the list and end its runner (xl destroy, a crash). The domain, or undefined if there is none by that name or id. */
export function removeDomain(layout: SimLayout, q: string): DomainState | undefined {
  const gone = withFileLock(layout.running, () => {
    const r = readJson<RunningState>(layout.running);
    if (!r) return undefined;
    const d = r.domains.find((x) => (/^\d+$/.test(q) ? x.id === Number(q) : x.name === q));
    if (!d) return undefined;
    r.domains = r.domains.filter((x) => x !== d);
    writeJson(layout.running, r);
    return d;
  });
  if (gone) waitGone(killRunner(gone.runner));
  return gone;
}

/** The pids of the runners alive now, by domain name (dom0's as Domain-0). */
export function liveRunnerPids(layout: SimLayout): Record<string, number> {
  const r = readJson<RunningState>(layout.running);
  const out: Record<string, number> = {};
  if (!r) return out;
  for (const d of [...(r.dom0 ? [r.dom0] : []), ...r.domains]) {
    const run = d.runner;
    if (run && run.pid !== null && run.startTime !== null && processStartTime(run.pid) === run.startTime) out[d.name] = run.pid;
  }
  return out;
}
