/**
 * Runs the steps of a night in order, so that the night survives anything:
 *
 *  - Before a step starts, the journal says so; then its START line goes to
 *    status.log. After its work, its result goes to the journal ("finishing"),
 *    then its END line, then the journal says "done". Whatever point a kill
 *    lands on, the next run can tell which lines are on disk and writes each
 *    line exactly once; it enters an interrupted step again and never repeats
 *    a finished one.
 *  - Process groups a killed agent left running are killed before the step is
 *    entered again. A step interrupted MAX_INTERRUPTIONS times is given up, so
 *    a step that takes the machine down cannot make it loop forever. A reboot
 *    the step asked for is not an interruption.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { processStartTime } from '../../shared/process/procstat.js';
import { killProcessGroup, runCommand, type CmdResult } from '../../shared/process/run.js';
import { isWorseThan, type JobStatus } from '../../shared/statuslog/entry.js';
import type { StatusLogWriter } from '../../shared/statuslog/writer.js';
import { checkpoint } from './crashpoints.js';
import type { Journal, JsonValue, StepRecord } from './journal.js';

/** A step interrupted this many times is given up (it may be what takes the machine down). */
export const MAX_INTERRUPTIONS = 3;

export interface StepResult {
  status: JobStatus;
  reason?: string;
  outputs?: { [k: string]: JsonValue };
  /** Extra key=value fields for the END line (e.g. kernel= for a reboot). */
  fields?: Array<[string, string]>;
  /** Steps that do not apply tonight (e.g. no build for an unchanged tree); each gets a TEST_NA line. */
  skip?: { steps: readonly string[]; reason: string };
  /**
   * 'going-down': the machine is rebooting; stop here without an END line,
   * the step is entered again after the boot.
   */
  then?: 'going-down';
}

export interface Step {
  readonly name: string;
  /**
   * The step's results directory, relative to the status.log's: the subdir
   * field of its START and END lines, where autotest's parser looks for the
   * test's keyval. None for the night's own steps.
   */
  readonly subdir?: string;
  run(ctx: StepContext): Promise<StepResult>;
}

export interface RunOptions {
  cwd: string;
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
}

export interface StepContext {
  readonly record: StepRecord;
  readonly logFile: string;
  /** A line for the person watching and for the step's log. */
  log(line: string): void;
  /** Run a shell command with the step's log and its process group recorded. */
  run(command: string, options: RunOptions): Promise<CmdResult>;
  /** Record outputs in the journal now (before something that may not return, like a reboot). */
  saveOutputs(outputs: { [k: string]: JsonValue }): void;
  /** A status line inside the step's START/END, written at most once however often the step is entered. */
  statusOnce(status: JobStatus, testname: string, message: string, fields?: Array<[string, string]>): void;
  /** A named point inside the step, for the crash tests. */
  checkpoint(point: string): void;
}

export interface RunnerIO {
  journal: Journal;
  statusLog: StatusLogWriter;
  statusLogPath: string;
  stepLogDir: string;
  env: NodeJS.ProcessEnv;
  /** This boot's id: process groups are only killed in the boot that started them (pids are reused). */
  bootId: string;
  /** Progress lines for the terminal or the journal (journald). */
  say(line: string): void;
}

export type NightEnd =
  | { kind: 'finished'; status: JobStatus; reason: string }
  | { kind: 'going-down'; step: string };

const FAILED: readonly JobStatus[] = ['ABORT', 'ERROR', 'FAIL'];

function isFailure(status: JobStatus): boolean {
  return FAILED.includes(status);
}

export interface StepRunnerOptions {
  /** Go on with the next step after one that failed (a domain's tests are independent of each other). */
  continueAfterFailure?: boolean;
}

export class StepRunner {
  constructor(
    private readonly io: RunnerIO,
    private readonly steps: readonly Step[],
    private readonly options: StepRunnerOptions = {},
  ) {
    mkdirSync(io.stepLogDir, { recursive: true });
  }

  async run(): Promise<NightEnd> {
    const { journal } = this.io;
    let worst: JobStatus = 'GOOD';
    let worstReason = '';
    const note = (status: JobStatus, reason: string): void => {
      if (status !== 'TEST_NA' && isWorseThan(status, worst)) {
        worst = status;
        worstReason = reason;
      }
    };
    for (const step of this.steps) {
      const rec = journal.step(step.name);
      if (rec.state !== 'done') {
        const result = await this.runStep(step, rec);
        if (result === 'going-down') return { kind: 'going-down', step: step.name };
      }
      note(rec.status ?? 'GOOD', rec.reason ?? '');
      if (isFailure(rec.status ?? 'GOOD') && !this.options.continueAfterFailure) break;
    }
    return { kind: 'finished', status: worst, reason: worstReason };
  }

  private async runStep(step: Step, rec: StepRecord): Promise<'going-down' | 'done'> {
    const { journal, statusLog } = this.io;
    const name = step.name;
    if (rec.state === 'finishing') {
      this.finish(rec);
      return 'done';
    }
    let interrupted: StepResult | undefined;
    if (rec.state === 'running') {
      this.killLeftovers(rec);
      rec.interruptions = (rec.interruptions ?? 0) + 1;
      if (rec.interruptions >= MAX_INTERRUPTIONS) {
        interrupted = { status: 'ABORT', reason: `interrupted ${rec.interruptions} times; giving up on this step` };
      } else {
        this.io.say(`[${name}] continuing after an interruption (entry ${rec.attempts + 1})`);
      }
    }
    checkpoint(`${name}:before`);
    rec.state = 'running';
    rec.attempts += 1;
    rec.startedAt ??= new Date().toISOString();
    journal.save();
    if (!this.isOpen(name)) statusLog.start(step.subdir ?? null, name);
    checkpoint(`${name}:started`);

    const result = interrupted ?? (await this.execute(step, rec));
    if (result.then === 'going-down') {
      rec.state = 'rebooting';
      journal.save();
      return 'going-down';
    }

    rec.status = result.status;
    if (result.reason !== undefined) rec.reason = result.reason;
    Object.assign(rec.outputs, result.outputs ?? {});
    if (result.fields) rec.outputs.endFields = result.fields.map(([k, v]) => [k, v]);
    rec.finishedAt = new Date().toISOString();
    rec.durationMs = Date.parse(rec.finishedAt) - Date.parse(rec.startedAt);
    if (result.skip) {
      for (const other of result.skip.steps) {
        const o = journal.step(other);
        o.state = 'done';
        o.status = 'TEST_NA';
        o.reason = result.skip.reason;
      }
      rec.outputs.skipped = [...result.skip.steps];
    }
    rec.state = 'finishing';
    journal.save();
    this.finish(rec);
    return 'done';
  }

  /** END line (unless a killed run already wrote it), TEST_NA lines for skipped steps, then done. */
  private finish(rec: StepRecord): void {
    const { journal, statusLog } = this.io;
    const name = rec.name;
    checkpoint(`${name}:finishing`);
    if (this.isOpen(name)) {
      const fields = ((rec.outputs.endFields as string[][] | undefined) ?? []).map(([k, v]) => [k, v] as [string, string]);
      fields.push(['duration_ms', String(rec.durationMs ?? 0)]);
      const subdir = this.steps.find((s) => s.name === name)?.subdir ?? null;
      statusLog.end(rec.status ?? 'ERROR', subdir, name, fields, rec.reason ?? '');
    }
    checkpoint(`${name}:ended`);
    for (const other of (rec.outputs.skipped as string[] | undefined) ?? []) {
      this.statusLineOnce(0, 'TEST_NA', other, journal.step(other).reason ?? '');
    }
    rec.state = 'done';
    journal.save();
    this.io.say(`[${name}] ${rec.status}${rec.reason ? `: ${rec.reason}` : ''} (${((rec.durationMs ?? 0) / 1000).toFixed(1)} s)`);
    checkpoint(`${name}:done`);
  }

  private async execute(step: Step, rec: StepRecord): Promise<StepResult> {
    const logFile = join(this.io.stepLogDir, `${step.name}.log`);
    const ctx: StepContext = {
      record: rec,
      logFile,
      log: (line) => this.io.say(`[${step.name}] ${line}`),
      run: async (command, options) => {
        const r = await runCommand(command, {
          cwd: options.cwd,
          env: options.env ?? this.io.env,
          timeoutMs: options.timeoutMs,
          logFile,
          onSpawn: (pid) => {
            rec.processGroups.push({ pgid: pid, boot: this.io.bootId, start: processStartTime(pid) ?? '' });
            this.io.journal.save();
          },
        });
        rec.commandMs = (rec.commandMs ?? 0) + r.durationMs;
        return r;
      },
      saveOutputs: (outputs) => {
        Object.assign(rec.outputs, outputs);
        this.io.journal.save();
      },
      statusOnce: (status, testname, message, fields) => {
        this.statusLineOnce(this.io.statusLog.depth, status, testname, message, fields);
      },
      checkpoint: (point) => checkpoint(`${step.name}:${point}`),
    };
    return step.run(ctx);
  }

  /** Is the step's START written and its END not yet? */
  private isOpen(name: string): boolean {
    return this.io.statusLog.openLevels.some((l) => l.testname === name);
  }

  /**
   * Write a status line unless the same (status, name) line is already in the
   * file at that depth: an interrupted step may pass the same point again.
   */
  private statusLineOnce(depth: number, status: JobStatus, testname: string, message: string, fields?: Array<[string, string]>): void {
    const prefix = `${'\t'.repeat(depth)}${status}\t----\t${testname}\t`;
    const text = readFileSync(this.io.statusLogPath, 'utf8');
    if (text.split('\n').some((l) => l.startsWith(prefix))) return;
    this.io.statusLog.status(status, null, testname, message, fields);
  }

  private killLeftovers(rec: StepRecord): void {
    for (const { pgid, boot, start } of rec.processGroups) {
      // Gone with a reboot, or the pid is someone else's now: not ours to kill.
      if (boot !== this.io.bootId || processStartTime(pgid) !== start) continue;
      if (killProcessGroup(pgid, 'SIGKILL')) this.io.say(`[${rec.name}] killed process group ${pgid} left by an interrupted run`);
    }
    rec.processGroups = [];
  }
}
