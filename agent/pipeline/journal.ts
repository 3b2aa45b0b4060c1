/**
 * The journal of a night: which steps have run, how they ended, what they
 * produced. It is replaced atomically after every change, so whatever kills
 * the agent (a crash, kill -9, a power cut, the reboot it asked for), the
 * next run finds the night exactly as far as it got and continues there.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../shared/atomic.js';
import type { JobStatus } from '../../shared/statuslog/entry.js';

export type StepState =
  /** Not started. */
  | 'pending'
  /** Started; if found so by a new run, it was interrupted and is entered again. */
  | 'running'
  /** It asked for a reboot and is entered again after the boot (not an interruption). */
  | 'rebooting'
  /** Its work is done and its result recorded; only its END line may be missing. */
  | 'finishing'
  | 'done';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };

export interface StepRecord {
  readonly name: string;
  state: StepState;
  /** How many times the step was entered. */
  attempts: number;
  /** How many of those entries followed an interruption (a kill, a crash, a power cut). */
  interruptions?: number;
  status?: JobStatus;
  reason?: string;
  /** What the step found or made, for the steps after it and for the next night. */
  outputs: { [k: string]: JsonValue };
  startedAt?: string;
  finishedAt?: string;
  durationMs?: number;
  /** Time spent in the commands the step ran (the rest is the agent's own). */
  commandMs?: number;
  /** Process groups the step started (and in which boot); a new run kills any that a killed agent left behind. */
  processGroups: Array<{ pgid: number; boot: string; start: string }>;
}

export interface NightOutcome {
  status: JobStatus;
  reason: string;
  finishedAt: string;
}

export interface NightData {
  version: 1;
  night: string;
  /** The control file as it was when the night began (a copy in the night's directory). */
  controlFile: string;
  /** Where the user's control file was. */
  sourceControlFile: string;
  /** The machine the night ran on (its hostname); absent in nights begun before it was recorded. */
  machine?: string;
  createdAt: string;
  steps: StepRecord[];
  outcome?: NightOutcome;
}

/** How a journal reaches the disk: replaced atomically (the runner's goes through its shared-directory retries). */
export type JournalWriter = (path: string, text: string) => void;

export class Journal {
  private constructor(
    readonly path: string,
    readonly data: NightData,
    private readonly write: JournalWriter,
  ) {}

  static create(
    path: string,
    data: Omit<NightData, 'version' | 'steps'>,
    stepNames: readonly string[],
    write: JournalWriter = writeFileAtomic,
  ): Journal {
    const steps = stepNames.map((name): StepRecord => ({ name, state: 'pending', attempts: 0, outputs: {}, processGroups: [] }));
    const j = new Journal(path, { version: 1, ...data, steps }, write);
    j.save();
    return j;
  }

  static load(path: string): Journal {
    const data = JSON.parse(readFileSync(path, 'utf8')) as NightData;
    if (data.version !== 1) throw new Error(`${path}: journal version ${String(data.version)} is not supported`);
    return new Journal(path, data, writeFileAtomic);
  }

  /** A journal whose data was read and checked elsewhere (the runner's, read through its retries). */
  static resume(path: string, data: NightData, write: JournalWriter): Journal {
    return new Journal(path, data, write);
  }

  save(): void {
    this.write(this.path, JSON.stringify(this.data, null, 2) + '\n');
  }

  /** A night begun by an older xentest lacks the steps added since: they join it, not yet run, where they belong. */
  ensureSteps(names: readonly string[]): void {
    const has = (n: string): boolean => this.data.steps.some((s) => s.name === n);
    const missing = names.filter((n) => !has(n));
    for (const name of missing) {
      const before = names.slice(0, names.indexOf(name)).reverse().find(has);
      const at = before === undefined ? 0 : this.data.steps.findIndex((s) => s.name === before) + 1;
      this.data.steps.splice(at, 0, { name, state: 'pending', attempts: 0, outputs: {}, processGroups: [] });
    }
    if (missing.length > 0) this.save();
  }

  step(name: string): StepRecord {
    const s = this.data.steps.find((x) => x.name === name);
    if (!s) throw new Error(`bug: the night has no step ${name}`);
    return s;
  }

  /** Output of an earlier step; throws if that step did not record it. */
  output<T extends JsonValue>(step: string, key: string): T {
    const v = this.step(step).outputs[key];
    if (v === undefined) throw new Error(`bug: step ${step} recorded no ${key}`);
    return v as T;
  }

  get finished(): boolean {
    return this.data.outcome !== undefined;
  }
}
