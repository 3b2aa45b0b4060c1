/**
 * The runner's journal (runner.json in the domain directory): which of the
 * domain's tests are done and how they ended. It has the shape of the
 * night's journal, so the same StepRunner drives both (one step per test),
 * but it is saved through the DomainArea: atomically, waiting out an outage
 * of the shared directory, and never creating directories on the way (which
 * could recreate a shared directory that is momentarily away).
 *
 * A journal belongs to one dispatch: one night id and one list of tests.
 * A journal left by another night (or for another list) is started afresh.
 */
import { readFileSync } from 'node:fs';
import type { JsonValue, NightData, StepRecord } from '../pipeline/journal.js';
import type { DomainArea } from './shared-area.js';

export class RunnerJournal {
  private constructor(
    readonly path: string,
    readonly data: NightData,
    private readonly area: DomainArea,
  ) {}

  /** The journal for this dispatch: the one on disk if it is for the same night and tests, else a new one. */
  static open(area: DomainArea, night: string, controlCopy: string, stepNames: readonly string[]): { journal: RunnerJournal; resumed: boolean } {
    const path = area.dir.runnerJournal;
    const existing = area.op(`read ${path}`, () => readExisting(path));
    if (existing && existing.night === night && sameNames(existing.steps.map((s) => s.name), stepNames)) {
      return { journal: new RunnerJournal(path, existing, area), resumed: true };
    }
    const data: NightData = {
      version: 1,
      night,
      controlFile: controlCopy,
      sourceControlFile: controlCopy,
      createdAt: new Date().toISOString(),
      steps: stepNames.map((name): StepRecord => ({ name, state: 'pending', attempts: 0, outputs: {}, processGroups: [] })),
    };
    const j = new RunnerJournal(path, data, area);
    j.save();
    return { journal: j, resumed: false };
  }

  save(): void {
    this.area.writeAtomic(this.path, JSON.stringify(this.data, null, 2) + '\n');
  }

  step(name: string): StepRecord {
    const s = this.data.steps.find((x) => x.name === name);
    if (!s) throw new Error(`bug: the runner has no test ${name}`);
    return s;
  }

  output<T extends JsonValue>(step: string, key: string): T {
    const v = this.step(step).outputs[key];
    if (v === undefined) throw new Error(`bug: test ${step} recorded no ${key}`);
    return v as T;
  }

  get finished(): boolean {
    return this.data.outcome !== undefined;
  }
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}

function readExisting(path: string): NightData | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const data = JSON.parse(text) as NightData;
    return data.version === 1 && Array.isArray(data.steps) ? data : undefined;
  } catch {
    // Written atomically, so a damaged one was not written by us: start afresh.
    return undefined;
  }
}
