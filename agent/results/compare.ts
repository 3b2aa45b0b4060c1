/**
 * Comparing a night with the nights before it, test by test, on the same
 * machine and domain, as osstest judges a flight against the last flight in
 * which each job passed ("REGR. vs. flight N").
 *
 * A test here is a (domain, test name) pair of the night; a test that a
 * domain ran more than once in the night (a control file may list a test
 * twice) has all its runs taken together.
 *
 * Verdicts (verdictOf):
 * - pass: GOOD, which includes a test that failed where it had to fail
 *   (`unprivileged = fail` in a domU: the runner records that as GOOD), and
 *   WARN. autotest writes WARN when the test itself succeeded but something
 *   around it deserves a look; the comparison asks whether the test works,
 *   so WARN passes, and its status word still shows in the output.
 * - skip: TEST_NA (the test did not apply or was not run). A skipped run is
 *   no evidence either way: it is ignored as history, and a test skipped
 *   tonight is listed as skipped.
 * - fail: everything else (FAIL, ERROR, ABORT, and a test that never ended).
 * A night's verdict for a test with several runs: pass if every run passed,
 * fail if every run failed, mixed if some of each (skipped runs ignored).
 * Only a pass is a pass as history; mixed counts as failing.
 *
 * The reference night of a test: with --base NIGHT, that night (on the same
 * machine), if it ran the test; without, the latest earlier night of the
 * machine that ran it in the same domain (not skipped). "Earlier" is by the
 * night's start time.
 *
 * Classes, decided in this order for a test of the night:
 * - skipped: every run tonight is TEST_NA.
 * - new: no reference night (never run before on this machine and domain;
 *   with --base: not run in the base night).
 * - pass: passes tonight and passed in the reference night.
 * - fixed: passes tonight and failed (or was mixed) in the reference night.
 * Failing tonight (fail or mixed):
 * - flaky: the same domain on the same machine passed it on the same
 *   build; the first that applies is given as the evidence:
 *     1. a re-run in the same domain tonight passed (mixed);
 *     2. the same domain passed it in another night of this machine that
 *        tested the same build (same Xen tree identity and same Linux tree:
 *        a retest of an unchanged tree), before or after this one, and it
 *        was the same test (the same source identity, its keyval's
 *        source_identity): a suite that changed and now fails regressed.
 * - regression: passed in the reference night ("REGR. vs. night N").
 * - still-failing: failed in the reference night too, and passed in some
 *   night before it (with the first failing night since that pass).
 * - never-passed: failed in the reference night, and no earlier night of
 *   this machine and domain, up to the reference night, passed it.
 * A failing test that another domain passed tonight is not flaky for that:
 * domains differ on purpose (dom0 is privileged, guests are not; the
 * paper's DOM0_SETTIME test must pass in dom0 and fail in a guest), so a
 * change that breaks a test in some domains only is a regression there. It
 * is shown as a note on the failure instead (passedInDomain).
 *
 * And for the tests not in the night:
 * - gone: run in the base night (without --base: the machine's previous
 *   night) but not tonight, in that domain.
 */
import type { JobStatus } from '../../shared/statuslog/entry.js';
import type { CompareFacts, GoneTest, NightRow, ResultsDb, TestFacts } from './db/store.js';

export type Verdict = 'pass' | 'fail' | 'skip';

export function verdictOf(status: JobStatus | string): Verdict {
  if (status === 'GOOD' || status === 'WARN') return 'pass';
  if (status === 'TEST_NA') return 'skip';
  return 'fail';
}

export const COMPARE_CLASSES = [
  'regression',
  'flaky',
  'still-failing',
  'never-passed',
  'fixed',
  'new',
  'gone',
  'skipped',
  'pass',
] as const;
export type CompareClass = (typeof COMPARE_CLASSES)[number];

export type FlakyEvidence = { kind: 'rerun'; night: string } | { kind: 'same-build'; night: string };

export interface ComparedTest {
  domain: string;
  name: string;
  class: Exclude<CompareClass, 'gone'>;
  status: string;
  reason: string;
  runs: number;
  /** The reference night and the test's status there (null: new). */
  base: { night: string; status: string } | null;
  lastPassNight: string | null;
  /** For still-failing and never-passed: the first failing night of the current run of failures. */
  failingSinceNight: string | null;
  flaky: FlakyEvidence | null;
  /** For a failing test: a domain of this night in which the same test passed (a note; see above). */
  passedInDomain: string | null;
}

export interface Comparison {
  machine: string;
  night: NightRow;
  /** The explicit base night (--base), or null: each test against its own history. */
  base: NightRow | null;
  /** The night whose tests are looked for to find gone ones. */
  goneRef: NightRow | null;
  tests: ComparedTest[];
  gone: GoneTest[];
  counts: Record<CompareClass, number>;
}

/** A night that the command line named is not there, or not only once. */
export class CompareError extends Error {
  override readonly name = 'CompareError';
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

/** Classifies one test of the night from its facts; see the rules above. */
export function classify(f: TestFacts, night: string): Pick<ComparedTest, 'class' | 'flaky'> {
  if (f.result === 'skip') return { class: 'skipped', flaky: null };
  if (f.refNight === null || f.refResult === null) return { class: 'new', flaky: null };
  if (f.result === 'pass') return { class: f.refResult === 'pass' ? 'pass' : 'fixed', flaky: null };
  const flaky: FlakyEvidence | null =
    f.result === 'mixed'
      ? { kind: 'rerun', night }
      : f.passedOnRerunNight !== null
        ? { kind: 'same-build', night: f.passedOnRerunNight }
        : null;
  if (flaky) return { class: 'flaky', flaky };
  if (f.refResult === 'pass') return { class: 'regression', flaky: null };
  return { class: f.lastPassNight !== null ? 'still-failing' : 'never-passed', flaky: null };
}

export interface CompareOptions {
  /** The night to compare (default: the newest). */
  night?: string;
  /** Compare every test with this night instead of its own history. */
  base?: string;
  /** The machine, when night ids are not unique across the database's machines. */
  machine?: string;
}

export async function compareNight(db: ResultsDb, options: CompareOptions = {}): Promise<Comparison> {
  const night = await resolveNight(db, options.night, options.machine);
  let base: NightRow | null = null;
  if (options.base !== undefined) {
    base = (await db.findNights(options.base, night.machine))[0] ?? null;
    if (!base) {
      throw new CompareError(
        `no night ${options.base} of machine ${night.machine} in the results database (${db.location})`,
        await recentHint(db, night.machine),
      );
    }
    if (base.id === night.id) throw new CompareError(`--base ${options.base} is the night being compared`, 'give an earlier night as --base, or none');
  }
  return buildComparison(night, base, await db.compareFacts(night, base));
}

export function buildComparison(night: NightRow, base: NightRow | null, facts: CompareFacts): Comparison {
  const tests = facts.tests.map((f): ComparedTest => {
    const c = classify(f, night.night);
    return {
      domain: f.domain,
      name: f.name,
      ...c,
      status: f.status,
      reason: f.reason,
      runs: f.runs,
      base: f.refNight === null ? null : { night: f.refNight, status: f.refStatus ?? '' },
      lastPassNight: f.lastPassNight,
      failingSinceNight: c.class === 'still-failing' || c.class === 'never-passed' ? f.failingSinceNight : null,
      passedInDomain: f.passedInDomain,
    };
  });
  const counts = Object.fromEntries(COMPARE_CLASSES.map((k) => [k, 0])) as Record<CompareClass, number>;
  for (const t of tests) counts[t.class]++;
  counts.gone = facts.gone.length;
  return { machine: night.machine, night, base, goneRef: facts.goneRef, tests, gone: facts.gone, counts };
}

async function resolveNight(db: ResultsDb, night: string | undefined, machine: string | undefined): Promise<NightRow> {
  const on = machine === undefined ? '' : ` of machine ${machine}`;
  if (night === undefined) {
    const newest = await db.newestNight(machine);
    if (!newest) {
      throw new CompareError(
        `the results database (${db.location}) has no nights${on}`,
        'add nights with "xentest db ingest NIGHT_DIR..." or "xentest db rebuild STATE_DIR"',
      );
    }
    return newest;
  }
  const found = await db.findNights(night, machine);
  if (found.length === 0) throw new CompareError(`no night ${night}${on} in the results database (${db.location})`, await recentHint(db, machine));
  if (found.length > 1) {
    throw new CompareError(
      `night ${night} is in the results database for ${found.length} machines: ${found.map((n) => n.machine).join(', ')}`,
      'say which with --machine NAME',
    );
  }
  return found[0] as NightRow;
}

async function recentHint(db: ResultsDb, machine: string | undefined): Promise<string> {
  const recent = await db.recentNights(5, machine);
  if (recent.length === 0) return 'the database has no nights yet: "xentest db ingest NIGHT_DIR..." adds them';
  return `the newest nights: ${recent.map((n) => (machine === undefined ? `${n.night} (${n.machine})` : n.night)).join(', ')}`;
}
