/**
 * Profilers: the dom0 commands of the control file's [Profilers] section
 * (`xentop -b -d 5`, `xl dmesg`, `vmstat 5`, ...), running while the domains
 * test.
 *
 *  profilers.start  before domains.dispatch: each command with /bin/sh -c in
 *                   a process group of its own, its output appended to
 *                   <night>/profilers/NAME.log by the command itself (no pipe
 *                   through the agent, so a killed agent does not take its
 *                   profilers down with it)
 *  profilers.stop   after domains.wait: SIGTERM to each group, SIGKILL 5 s
 *                   later; one status line per profiler
 *
 * A night that continues after a reboot, a power cut or a killed agent first
 * starts again every profiler that no longer runs (restartProfilers), with a
 * line in its log where the gap is. A profiler never fails the night: one
 * that cannot start or dies is a WARN line of its own.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readProcStat, processStartTime } from '../../../shared/process/procstat.js';
import { groupHasLiveMembers, stopProcessGroup } from '../../../shared/process/run.js';
import type { JobStatus } from '../../../shared/statuslog/entry.js';
import type { Journal, JsonValue, StepRecord } from '../journal.js';
import type { Night } from '../night.js';
import type { Step, StepResult } from '../runner.js';
import { currentBootId } from './reboot.js';

export const START_STEP = 'profilers.start';
export const STOP_STEP = 'profilers.stop';
/** A profiler that ends this soon after its start is reported at once (a one-shot that succeeded is not a problem). */
const EARLY_EXIT_MS = 1000;
const STOP_GRACE_MS = 5000;
const POLL_MS = 50;

type Exit = { code: number | null; signal: string | null };

/** One profiler's process, as profilers.start's outputs in the journal keep it. */
type ProfilerRun = {
  command: string;
  /** Also its process group id; 0 if it could not be started at all. */
  pid: number;
  /** Its start time (/proc/PID/stat): with the boot, what tells it from a process that got its pid later. */
  start: string;
  boot: string;
  startedAt: string;
  restarts: number;
  /** How it ended, when the agent saw it end. */
  exit: Exit | null;
  /** Why it could not be started. */
  error?: string;
};
type Runs = { [name: string]: ProfilerRun };
type Outcome = { status: JobStatus; message: string };

/** How profilers this agent started ended, by pid: an exit status is only known to the profiler's parent. */
const exits = new Map<number, Exit>();

function logFile(night: Night, name: string): string {
  return join(night.dir, 'profilers', `${name}.log`);
}

function runsOf(rec: StepRecord): Runs {
  return (rec.outputs.profilers as unknown as Runs | undefined) ?? {};
}

/** The profiler's process group still runs, in this boot; a reused pid is someone else's. */
function isRunning(run: ProfilerRun, bootId: string): boolean {
  if (run.pid <= 1 || run.boot !== bootId) return false;
  const leader = readProcStat(run.pid);
  // Another process with its pid: ours ended, and with it its group (a group keeps its id from being reused).
  if (leader && leader.startTime !== run.start) return false;
  return groupHasLiveMembers(run.pid);
}

/** A one-shot (`xl dmesg`) that ran to completion in this boot: running it again would only repeat its output. */
function finishedWell(run: ProfilerRun, bootId: string): boolean {
  return run.boot === bootId && run.exit?.code === 0;
}

function describeExit(exit: Exit): string {
  return exit.signal !== null ? `killed by ${exit.signal}` : `exited with status ${exit.code}`;
}

/** Start a profiler; never throws for the command's sake (a failure is in the result). */
async function launch(night: Night, name: string, command: string, restarts: number): Promise<ProfilerRun> {
  const file = logFile(night, name);
  mkdirSync(join(night.dir, 'profilers'), { recursive: true });
  const startedAt = new Date().toISOString();
  const base = { command, boot: currentBootId(night.paths.bootIdFile), startedAt, restarts, exit: null };
  const fd = openSync(file, 'a');
  try {
    if (restarts > 0) writeSync(fd, `--- xentest: restarted at ${startedAt} (night resumed) ---\n`);
    const child = spawn('/bin/sh', ['-c', command], { cwd: '/', env: night.env, detached: true, stdio: ['ignore', fd, fd] });
    const failed = await new Promise<Error | undefined>((resolve) => {
      child.once('spawn', () => resolve(undefined));
      child.once('error', resolve);
    });
    if (failed || child.pid === undefined) return { ...base, pid: 0, start: '', error: `/bin/sh could not be started: ${failed?.message ?? 'no pid'}` };
    const pid = child.pid;
    child.on('exit', (code, signal) => exits.set(pid, { code, signal }));
    // The agent never signals it through this object; nothing it could report may crash the night.
    child.on('error', () => undefined);
    // The agent does not wait for its profilers to exit.
    child.unref();
    return { ...base, pid, start: processStartTime(pid) ?? '' };
  } finally {
    closeSync(fd);
  }
}

/** The last line of a log (its last 4 KiB), without xentest's own markers: what a command said before it died. */
function lastLine(file: string): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const size = statSync(file).size;
    const buf = Buffer.alloc(Math.min(size, 4096));
    readSync(fd, buf, 0, buf.length, size - buf.length);
    const lines = buf.toString('utf8').split('\n').map((l) => l.trim());
    return lines.filter((l) => l !== '' && !l.startsWith('--- xentest:')).pop() ?? '';
  } catch {
    return '';
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function logBytes(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** SIGTERM to the group, SIGKILL if it is still there after the grace; what it took, or undefined if it would not die. */
async function stopGroup(pgid: number): Promise<string | undefined> {
  const { sigkill, survivors } = await stopProcessGroup(pgid, STOP_GRACE_MS);
  if (survivors) return undefined;
  return sigkill ? ` (SIGKILL: it did not stop on SIGTERM within ${STOP_GRACE_MS / 1000} s)` : '';
}

export function startProfilersStep(night: Night): Step {
  return {
    name: START_STEP,
    async run(ctx): Promise<StepResult> {
      const bootId = currentBootId(night.paths.bootIdFile);
      const runs: Runs = { ...runsOf(ctx.record) };
      const launched: string[] = [];
      for (const p of night.control.profilers) {
        const earlier = runs[p.name];
        // Entered again after an interruption: one that runs, or ran to completion, is kept.
        if (earlier && (isRunning(earlier, bootId) || finishedWell(earlier, bootId))) continue;
        const run = await launch(night, p.name, p.command, earlier ? earlier.restarts + 1 : 0);
        runs[p.name] = run;
        launched.push(p.name);
        ctx.saveOutputs({ profilers: runs as unknown as JsonValue });
        ctx.log(run.error ? `${p.name}: ${run.error}` : `${p.name}: pid ${run.pid}: ${p.command}`);
        ctx.checkpoint('middle');
      }
      if (launched.length === 0) ctx.checkpoint('middle');

      const deadline = Date.now() + EARLY_EXIT_MS;
      const watched = launched.map((n) => runs[n] as ProfilerRun).filter((r) => !r.error);
      while (Date.now() < deadline && watched.some((r) => !exits.has(r.pid))) await sleep(POLL_MS);
      const ended: string[] = [];
      for (const name of launched) {
        const run = runs[name] as ProfilerRun;
        if (run.error) {
          ctx.statusOnce('WARN', `profiler.${name}`, run.error);
          ended.push(`${name} could not be started`);
          continue;
        }
        const exit = exits.get(run.pid);
        if (!exit) continue;
        run.exit = exit;
        if (exit.code === 0) continue;
        const said = lastLine(logFile(night, name));
        ctx.statusOnce('WARN', `profiler.${name}`, `${describeExit(exit)} within ${EARLY_EXIT_MS / 1000} s of its start${said ? `: ${said}` : ''}`);
        ended.push(`${name} ${describeExit(exit)}`);
      }
      const names = night.control.profilers.map((p) => p.name);
      return {
        // A profiler is an observer: whatever happens to it, the night goes on.
        status: 'GOOD',
        reason: names.length === 0 ? 'no profilers' : `started ${names.join(', ')}${ended.length ? `; ${ended.join(', ')}` : ''}`,
        outputs: { profilers: runs as unknown as JsonValue },
      };
    },
  };
}

/** `stopping`: an interrupted profilers.stop had begun to stop it, so its end was no accident. */
async function stopOne(night: Night, name: string, run: ProfilerRun, bootId: string, stopping: boolean): Promise<Outcome> {
  const output = (): string =>
    `${logBytes(logFile(night, name))} bytes of output in profilers/${name}.log, restarted ${run.restarts} time${run.restarts === 1 ? '' : 's'}`;
  if (isRunning(run, bootId)) {
    const how = await stopGroup(run.pid);
    if (how === undefined) return { status: 'WARN', message: `process group ${run.pid} still runs after SIGKILL; ${output()}` };
    return { status: 'GOOD', message: `${output()}${how}` };
  }
  if (stopping) return { status: 'GOOD', message: output() };
  if (run.error) return { status: 'WARN', message: run.error };
  const exit = run.exit ?? (run.boot === bootId ? exits.get(run.pid) : undefined);
  if (exit?.code === 0) return { status: 'GOOD', message: `finished by itself (exit status 0); ${output()}` };
  const how = exit ? describeExit(exit) : 'exit status unknown: the agent was not running when it ended';
  return { status: 'WARN', message: `ended before the domains finished (${how}); ${output()}` };
}

export function stopProfilersStep(night: Night): Step {
  return {
    name: STOP_STEP,
    async run(ctx): Promise<StepResult> {
      const bootId = currentBootId(night.paths.bootIdFile);
      const start = night.journal.step(START_STEP);
      const runs = start.status === 'TEST_NA' ? {} : runsOf(start);
      // Entered again after an interruption: a profiler already stopped keeps its outcome.
      const stopped = { ...((ctx.record.outputs.stopped as unknown as { [name: string]: Outcome } | undefined) ?? {}) };
      for (const [name, run] of Object.entries(runs)) {
        let outcome = stopped[name];
        if (!outcome) {
          const stopping = ctx.record.outputs.stopping === name;
          if (isRunning(run, bootId)) ctx.saveOutputs({ stopping: name });
          outcome = await stopOne(night, name, run, bootId, stopping);
        }
        stopped[name] = outcome;
        ctx.saveOutputs({ stopped: stopped as unknown as JsonValue });
        ctx.statusOnce(outcome.status, `profiler.${name}`, outcome.message);
        ctx.checkpoint('middle');
      }
      const names = Object.keys(runs);
      if (names.length === 0) ctx.checkpoint('middle');
      return {
        status: 'GOOD',
        reason: names.length === 0 ? 'no profilers' : `stopped ${names.join(', ')}; their output is in ${join(night.dir, 'profilers')}`,
        outputs: { stopped: stopped as unknown as JsonValue },
      };
    },
  };
}

/** Profilers were started and profilers.stop has not begun: they should be running now. */
function profilersDue(journal: Journal): boolean {
  const start = journal.step(START_STEP);
  return start.state === 'done' && start.status !== 'TEST_NA' && journal.step(STOP_STEP).state === 'pending';
}

/**
 * A night that continues (after a reboot, a power cut or a killed agent):
 * every profiler that no longer runs is started again, before the night goes
 * on, so that its log covers the rest of the domains' tests.
 */
export async function restartProfilers(night: Night): Promise<void> {
  if (!profilersDue(night.journal)) return;
  const start = night.journal.step(START_STEP);
  const runs = runsOf(start);
  const bootId = currentBootId(night.paths.bootIdFile);
  for (const [name, run] of Object.entries(runs)) {
    if (isRunning(run, bootId) || finishedWell(run, bootId)) continue;
    const again = await launch(night, name, run.command, run.restarts + 1);
    runs[name] = again;
    start.outputs.profilers = runs as unknown as JsonValue;
    night.journal.save();
    night.say(`[${START_STEP}] ${name} was not running any more; ${again.error ?? `started again, pid ${again.pid}`}`);
  }
}

/** The night ended (a step failed) with its profilers started and never stopped. */
export function profilersLeftRunning(journal: Journal): boolean {
  const start = journal.step(START_STEP);
  return start.state === 'done' && start.status !== 'TEST_NA' && journal.step(STOP_STEP).state !== 'done';
}
