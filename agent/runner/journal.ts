/**
 * The runner's journal (runner.json in the domain directory): which of the
 * domain's tests are done and how they ended. It is the night's Journal, so
 * the same StepRunner drives both (one step per test), but it is saved
 * through the DomainArea: atomically, waiting out an outage
 * of the shared directory, and never creating directories on the way (which
 * could recreate a shared directory that is momentarily away).
 *
 * A journal belongs to one dispatch: one night id and one list of tests.
 * A journal left by another night (or for another list) is started afresh.
 */
import { readFileSync } from 'node:fs';
import { Journal, type NightData } from '../pipeline/journal.js';
import type { DomainArea } from './shared-area.js';

/** The journal for this dispatch: the one on disk if it is for the same night and tests, else a new one. */
export function openRunnerJournal(
  area: DomainArea,
  night: string,
  controlCopy: string,
  stepNames: readonly string[],
): { journal: Journal; resumed: boolean } {
  const path = area.dir.runnerJournal;
  const write = (p: string, text: string): void => area.writeAtomic(p, text);
  const existing = area.op(`read ${path}`, () => readExisting(path));
  if (existing && existing.night === night && sameNames(existing.steps.map((s) => s.name), stepNames)) {
    return { journal: Journal.resume(path, existing, write), resumed: true };
  }
  const data = { night, controlFile: controlCopy, sourceControlFile: controlCopy, createdAt: new Date().toISOString() };
  return { journal: Journal.create(path, data, stepNames, write), resumed: false };
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
