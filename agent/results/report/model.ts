/**
 * What the morning report says, as data: the night's files (NightRecord),
 * its comparison with the nights before (from the results database) and the
 * machine's recent history. html.ts and text.ts only lay this out, so the
 * page and the email always agree.
 *
 * The verdict, first that applies:
 * - INCOMPLETE: the night has no outcome yet (it is still running, or was
 *   cut off and not resumed).
 * - BROKEN: a step of the night itself failed (fetch, build, install, boot
 *   loader, reboot: FAIL, ERROR or ABORT), so tonight's build was not tested.
 * - REGRESSED: a test regressed (passed the last night that ran it, fails
 *   now), or a domain that ran its tests the night before did not tonight
 *   (its tests are gone and the domain did not start or finish).
 * - FAILING: no regression, but something fails: known failures (still
 *   failing, never passed, flaky), a domain that did not run, or (with no
 *   comparison to tell) any failing test.
 * - PASS: every test of every domain passed.
 *
 * Failures are listed in the order a person should read them: the night's
 * own failed steps, the domains that did not run their tests, regressions,
 * then the known ones (flaky, still failing, never passed). Each has the end
 * of the log that shows why.
 */
import { join } from 'node:path';
import type { JobStatus } from '../../../shared/statuslog/entry.js';
import type { CompareClass, ComparedTest, Comparison } from '../compare.js';
import { COMPARE_CLASSES, verdictOf } from '../compare.js';
import type { GoneTest, NightHistoryRow } from '../db/store.js';
import { classDetail, goneDetail, otherDomainNote } from '../explain.js';
import { stepOutcome, stepSeconds, testSeconds } from '../export/common.js';
import type { DomainRecord, NightRecord, TestRecord } from '../record.js';
import { firstExcerpt, type LogExcerpt } from './excerpt.js';

export type VerdictWord = 'INCOMPLETE' | 'BROKEN' | 'REGRESSED' | 'FAILING' | 'PASS';

export interface ReportVerdict {
  word: VerdictWord;
  /** One line: what happened, e.g. "1 regression: vm1/sieve". */
  headline: string;
}

/** A failure to read about, with where its log is. */
export interface ReportFailure {
  kind: 'step' | 'domain' | 'test';
  /** For tests: its comparison class (null when there is no comparison). */
  class: CompareClass | null;
  domain: string | null;
  name: string;
  status: string;
  reason: string;
  /** Against what it is judged: "REGR. vs. night N (GOOD)", "failing since ...". */
  detail: string;
  excerpt: LogExcerpt | null;
}

export interface ReportTestRow {
  name: string;
  status: JobStatus;
  class: CompareClass | null;
  detail: string;
  reason: string;
  seconds: number | null;
  /** The test must fail in an unprivileged domain and did: a pass. */
  expectedToFail: boolean;
}

export interface ReportDomain {
  name: string;
  status: JobStatus;
  reason: string;
  tests: ReportTestRow[];
}

export interface ReportStep {
  name: string;
  /** Its status, or "not run" / "unfinished". */
  status: string;
  reason: string;
  seconds: number | null;
}

export interface ReportCounts {
  tests: number;
  pass: number;
  fail: number;
  skip: number;
}

/** The night's own fields, as its record has them. */
export interface ReportData extends Pick<NightRecord, 'machine' | 'night' | 'dir' | 'started' | 'finished' | 'status' | 'reason' | 'build'> {
  verdict: ReportVerdict;
  counts: ReportCounts;
  /** Counts by comparison class (TKO's job-level entries left out); null without a comparison. */
  classes: Record<CompareClass, number> | null;
  /** Why there is no comparison (the database could not be used), or null. */
  notCompared: string | null;
  /** The night each test was compared with when one base was given; null when each test has its own. */
  base: string | null;
  failures: ReportFailure[];
  fixed: ReportTestRef[];
  added: ReportTestRef[];
  gone: Array<{ domain: string; name: string; detail: string }>;
  domains: ReportDomain[];
  steps: ReportStep[];
  /** Oldest first, tonight last. */
  history: NightHistoryRow[];
  generatedAt: string;
}

export interface ReportTestRef {
  domain: string;
  name: string;
  status: string;
  detail: string;
}

export interface ReportInput {
  record: NightRecord;
  /** Null when the database could not be used: the report is made from the files alone. */
  comparison: Comparison | null;
  /** Why comparison is null. */
  notCompared?: string;
  /** The machine's nights up to this one, newest first (as the database gives them). */
  history?: readonly NightHistoryRow[];
  now?: Date;
}

/** The job-level entries TKO adds (SERVER_JOB, CLIENT_JOB.<n>) are not tests a person ran. */
export function isJobEntry(name: string): boolean {
  return name === 'SERVER_JOB' || /^CLIENT_JOB\.\d+$/.test(name);
}

const FAILED_STEP: readonly string[] = ['FAIL', 'ERROR', 'ABORT'];
const KNOWN_ORDER: readonly CompareClass[] = ['flaky', 'still-failing', 'never-passed'];

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** The end of the log that says why a test failed: the last phase it ran (run, install, build), else the runner's own log. */
function testExcerpt(record: NightRecord, domain: string, t: TestRecord): LogExcerpt | null {
  const dir = t.subdir && t.subdir !== '----' ? t.subdir : t.name;
  return firstExcerpt(join(record.dir, 'domains', domain), ['run', 'install', 'build', 'fetch', 'runner'].map((p) => join(dir, 'debug', `${p}.log`)));
}

function domainExcerpt(record: NightRecord, domain: string): LogExcerpt | null {
  return firstExcerpt(record.dir, [join('domains', domain, 'ERROR.txt'), join('steps', `runner-${domain}.log`), join('steps', 'domains.start.log')]);
}

function stepExcerpt(record: NightRecord, step: string): LogExcerpt | null {
  return firstExcerpt(record.dir, [join('steps', `${step}.log`)]);
}

/** A domain's tests, without TKO's job-level entries, with their comparison where there is one. */
function domainTests(d: DomainRecord, compared: Map<string, ComparedTest>): Array<{ t: TestRecord; c: ComparedTest | undefined }> {
  return d.tests.filter((t) => !isJobEntry(t.name)).map((t) => ({ t, c: compared.get(`${d.name}\0${t.name}`) }));
}

export function buildReport(input: ReportInput): ReportData {
  const { record, comparison } = input;
  const compared = new Map<string, ComparedTest>((comparison?.tests ?? []).map((c) => [`${c.domain}\0${c.name}`, c]));

  const counts: ReportCounts = { tests: 0, pass: 0, fail: 0, skip: 0 };
  const domains: ReportDomain[] = record.domains.map((d) => ({
    name: d.name,
    status: d.status,
    reason: d.reason,
    tests: domainTests(d, compared).map(({ t, c }) => {
      counts.tests++;
      counts[verdictOf(t.status)]++;
      return {
        name: t.name,
        status: t.status,
        class: c?.class ?? null,
        detail: c ? [classDetail(c), otherDomainNote(c)].filter(Boolean).join(' ') : '',
        reason: t.reason,
        seconds: t.keyval.total_seconds !== undefined && Number.isFinite(Number(t.keyval.total_seconds)) ? Number(t.keyval.total_seconds) : testSeconds(t.started, t.finished),
        expectedToFail: t.keyval.expected === 'fail' && t.status === 'GOOD',
      };
    }),
  }));

  const steps: ReportStep[] = record.steps.map((s) => {
    const o = stepOutcome(s, record);
    return { name: s.name, status: o.kind === 'status' ? o.status : o.kind === 'not-run' ? 'not run' : 'unfinished', reason: o.reason, seconds: stepSeconds(s) };
  });

  // The night's own failures, then domains that did not run their tests, then tests.
  const failures: ReportFailure[] = [];
  for (const s of record.steps) {
    if (s.status === null || !FAILED_STEP.includes(s.status) || s.name.startsWith('domains.')) continue;
    failures.push({ kind: 'step', class: null, domain: null, name: s.name, status: s.status, reason: s.reason, detail: 'the night stopped here', excerpt: stepExcerpt(record, s.name) });
  }
  const domainProblems = record.domains.filter((d) => verdictOf(d.status) === 'fail');
  for (const d of domainProblems) {
    failures.push({ kind: 'domain', class: null, domain: d.name, name: d.name, status: d.status, reason: d.reason, detail: 'the domain did not run all its tests', excerpt: domainExcerpt(record, d.name) });
  }
  const failing = (cls: CompareClass | null): ReportFailure[] =>
    record.domains.flatMap((d) =>
      domainTests(d, compared)
        .filter(({ t, c }) => verdictOf(t.status) === 'fail' && (cls === null ? comparison === null : c?.class === cls))
        .map(({ t, c }) => ({
          kind: 'test' as const,
          class: c?.class ?? null,
          domain: d.name,
          name: t.name,
          status: t.status,
          reason: t.reason,
          detail: c ? [classDetail(c), otherDomainNote(c)].filter(Boolean).join(' ') : '',
          excerpt: testExcerpt(record, d.name, t),
        })),
    );
  const regressions = failing('regression');
  failures.push(...regressions);
  if (comparison === null) failures.push(...failing(null));
  // New tests that fail tonight are failures too; they are not regressions (nothing to regress from).
  for (const cls of [...KNOWN_ORDER, 'new' as const]) failures.push(...failing(cls));

  const refs = (cls: CompareClass): ReportTestRef[] =>
    (comparison?.tests ?? [])
      .filter((c) => c.class === cls && !isJobEntry(c.name))
      .map((c) => ({ domain: c.domain, name: c.name, status: c.status, detail: classDetail(c) }));
  const gone = (comparison?.gone ?? []).filter((g) => !isJobEntry(g.name));
  // A domain that ran its tests to the end the night before and did not tonight: its tests are gone (it did
  // not start) or its SERVER_JOB, how dom0 saw it end, regressed (it did not finish).
  const lostDomains = new Set(gone.filter((g: GoneTest) => g.domainStatus !== null && verdictOf(g.domainStatus) === 'fail').map((g) => g.domain));
  for (const c of comparison?.tests ?? []) if (c.name === 'SERVER_JOB' && c.class === 'regression') lostDomains.add(c.domain);
  let classes: Record<CompareClass, number> | null = null;
  if (comparison) {
    classes = Object.fromEntries(COMPARE_CLASSES.map((k) => [k, 0])) as Record<CompareClass, number>;
    for (const c of comparison.tests) if (!isJobEntry(c.name)) classes[c.class]++;
    classes.gone = gone.length;
  }

  const verdict = verdictFor(record, { regressions, lostDomains: [...lostDomains], domainProblems, failures, counts, comparison });
  return {
    machine: record.machine,
    night: record.night,
    dir: record.dir,
    started: record.started,
    finished: record.finished,
    status: record.status,
    reason: record.reason,
    build: record.build,
    verdict,
    counts,
    classes,
    notCompared: comparison ? null : (input.notCompared ?? 'no results database'),
    base: comparison?.base?.night ?? null,
    failures,
    fixed: refs('fixed'),
    added: refs('new'),
    gone: gone.map((g) => ({ domain: g.domain, name: g.name, detail: goneDetail(g) })),
    domains,
    steps,
    history: [...(input.history ?? [])].reverse(),
    generatedAt: (input.now ?? new Date()).toISOString(),
  };
}

interface VerdictFacts {
  regressions: ReportFailure[];
  lostDomains: string[];
  domainProblems: DomainRecord[];
  failures: ReportFailure[];
  counts: ReportCounts;
  comparison: Comparison | null;
}

function verdictFor(record: NightRecord, f: VerdictFacts): ReportVerdict {
  if (record.status === null) return { word: 'INCOMPLETE', headline: 'the night has not finished: these are the results so far' };
  const broken = f.failures.find((x) => x.kind === 'step');
  if (broken) return { word: 'BROKEN', headline: `the night stopped at ${broken.name} (${broken.status}): ${firstLine(broken.reason)}` };
  if (f.regressions.length > 0 || f.lostDomains.length > 0) {
    const parts: string[] = [];
    if (f.regressions.length > 0) {
      parts.push(`${plural(f.regressions.length, 'regression')}: ${listed(f.regressions.map((r) => `${r.domain}/${r.name}`))}`);
    }
    if (f.lostDomains.length > 0) parts.push(`${listed(f.lostDomains)} ran ${f.lostDomains.length === 1 ? 'its' : 'their'} tests the night before, not tonight`);
    return { word: 'REGRESSED', headline: parts.join('; ') };
  }
  const failingTests = f.failures.filter((x) => x.kind === 'test').length;
  if (failingTests > 0 || f.domainProblems.length > 0) {
    const parts: string[] = [];
    if (f.domainProblems.length > 0) parts.push(`${plural(f.domainProblems.length, 'domain')} did not run all tests (${listed(f.domainProblems.map((d) => d.name))})`);
    if (failingTests > 0) parts.push(f.comparison ? `${plural(failingTests, 'known failure')}` : `${plural(failingTests, 'failing test')} (not compared with earlier nights)`);
    return { word: 'FAILING', headline: `no regressions; ${parts.join(', ')}` };
  }
  if (f.counts.tests === 0) return { word: 'PASS', headline: 'no tests ran, and nothing failed' };
  return { word: 'PASS', headline: `all ${plural(f.counts.tests, 'test')} passed` + (f.counts.skip ? ` (${f.counts.skip} skipped)` : '') };
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? '';
}

function listed(names: string[], max = 5): string {
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
}
