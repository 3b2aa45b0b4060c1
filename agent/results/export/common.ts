/**
 * What the JUnit and KCIDB exports share: how a step of the night ended when
 * it recorded no status, times, and the steps that build each tree.
 */
import type { JobStatus } from '../../../shared/statuslog/entry.js';
import { worseOf } from '../../../shared/statuslog/entry.js';
import type { NightRecord, StepResultRecord } from '../record.js';

/**
 * A step's outcome. A step that finished always has a status (the step
 * runner records one, TEST_NA for the build steps an unchanged tree skips),
 * so a missing one says how far the night got.
 */
export type StepOutcome =
  | { kind: 'status'; status: JobStatus; reason: string }
  /** Never entered: an earlier step ended the night, or the night has not got there yet. */
  | { kind: 'not-run'; reason: string }
  /** Entered and not finished: interrupted for good, or still running when exported. */
  | { kind: 'unfinished'; reason: string };

export function stepOutcome(step: StepResultRecord, night: NightRecord): StepOutcome {
  if (step.status !== null) return { kind: 'status', status: step.status, reason: step.reason };
  const inProgress = night.finished === null;
  if (step.started === null) {
    return { kind: 'not-run', reason: inProgress ? 'not run yet: the night is in progress' : 'not run: the night ended before this step' };
  }
  return {
    kind: 'unfinished',
    reason: inProgress ? `started at ${step.started}, still running when exported` : `started at ${step.started} and never finished`,
  };
}

export function findStep(night: NightRecord, name: string): StepResultRecord | undefined {
  return night.steps.find((s) => s.name === name);
}

/** The steps that build and install a tree, in the order they run. */
export function buildSteps(night: NightRecord, tree: 'xen' | 'linux'): StepResultRecord[] {
  return [`build.${tree}`, `install.${tree}`].map((n) => findStep(night, n)).filter((s): s is StepResultRecord => s !== undefined);
}

/** The worst of some statuses, as autotest ranks them (TEST_NA counts only when it is all there is). */
export function worstStatus(statuses: readonly JobStatus[]): JobStatus | null {
  const ran: JobStatus[] = statuses.filter((s) => s !== 'TEST_NA');
  if (ran.length === 0) return statuses.length > 0 ? 'TEST_NA' : null;
  return ran.reduce((a, b) => worseOf(a, b));
}

/** A test's run time in seconds, from its START and END timestamps; null when either is missing or they disagree. */
export function testSeconds(started: number | null, finished: number | null): number | null {
  if (started === null || finished === null || !Number.isFinite(started) || !Number.isFinite(finished)) return null;
  const d = finished - started;
  return d >= 0 ? d : null;
}

export function stepSeconds(step: StepResultRecord): number | null {
  if (step.durationMs !== null && Number.isFinite(step.durationMs) && step.durationMs >= 0) return step.durationMs / 1000;
  if (step.started !== null && step.finished !== null) {
    const d = Date.parse(step.finished) - Date.parse(step.started);
    if (Number.isFinite(d) && d >= 0) return d / 1000;
  }
  return null;
}

/** An ISO 8601 UTC time from a date string, or null if it does not parse. */
export function isoFromString(s: string | null): string | null {
  if (s === null) return null;
  const t = Date.parse(s);
  return Number.isFinite(t) ? new Date(t).toISOString() : null;
}

/** An ISO 8601 UTC time from seconds since the epoch (status.log timestamps). */
export function isoFromEpochSeconds(s: number | null): string | null {
  if (s === null || !Number.isFinite(s)) return null;
  const d = new Date(s * 1000);
  return Number.isFinite(d.getTime()) ? d.toISOString() : null;
}
