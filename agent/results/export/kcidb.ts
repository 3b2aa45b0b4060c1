/**
 * A night in KernelCI's KCIDB I/O format (schema v5.3, the newest kcidb-io
 * has; test/fixtures/kcidb/ holds it and says where it comes from), ready for
 * `kcidb-submit`.
 *
 *   checkouts  one: the night's Xen tree. git_commit_hash when the tree is a
 *              git commit (identity git:<sha1>), tree_name and
 *              git_repository_url when the caller knows the tree's [Locations]
 *              entry (an https:// git URL only: the schema takes no other;
 *              any URL loses a user name or token in it); valid from the
 *              fetch step. The tree's identity and the night in misc.
 *   builds     xen (build.xen, install.xen); linux too when the night built a
 *              dom0 kernel. Both hang off the one checkout; the Linux tree's
 *              identity is in the linux build's misc.
 *   tests      boot            the reboot step (ABORT there is a boot failure)
 *              xen.<domain>    the domain as dom0 saw it: started, finished,
 *                              timed out
 *              xen.<domain>.<test>  each test in the domain's status.log
 *
 * Status mapping ({@link kcidbStatus}):
 *
 *   GOOD                PASS
 *   WARN                PASS; the warning is the log_excerpt, misc.autotest_status is WARN
 *   FAIL                FAIL
 *   ERROR, ABORT        ERROR
 *   BUG, ALERT          ERROR: not a result a test ends with, so not a pass
 *   RUNNING, NOSTATUS   MISS: the test never recorded how it ended
 *   TEST_NA             SKIP
 *
 * Every test keeps its autotest status in misc.autotest_status and its
 * reason as log_excerpt. A build whose steps were all TEST_NA (the tree was
 * what the last good night built, so it was not rebuilt) is PASS with
 * misc.rebuilt false: the booted build is the last good one.
 *
 * Paths: each component is reduced to the characters a KCIDB path allows
 * ([A-Za-z0-9_-]); anything else becomes "_". A test name's dots stay path
 * separators (boot.0, CLIENT_JOB.0, network_Ping.4k); a domain's hostname's
 * dots do not (guest.example -> guest_example). The original names are in
 * misc.
 *
 * Ids are "<origin>:" and a hash of what identifies the object within the
 * night (machine, night, domain, test name, subdir, and how many tests of the
 * same name came before), so exporting the same night again gives the same
 * ids and a resubmission updates the objects instead of adding new ones.
 */
import { createHash } from 'node:crypto';
import type { JobStatus } from '../../../shared/statuslog/entry.js';
import type { DomainRecord, NightRecord, StepResultRecord, TestRecord } from '../record.js';
import {
  buildSteps,
  findStep,
  isoFromEpochSeconds,
  isoFromString,
  stepSeconds,
  testSeconds,
  worstStatus,
} from './common.js';

export const KCIDB_VERSION = { major: 5, minor: 3 } as const;

/** An origin as the schema allows it: the CI system's name, in every id before the colon. */
export const KCIDB_ORIGIN_PATTERN = /^[a-z0-9_]+$/;

export const KCIDB_LOG_EXCERPT_MAX = 16384;

export type KcidbStatus = 'FAIL' | 'ERROR' | 'MISS' | 'PASS' | 'DONE' | 'SKIP';

export interface KcidbOptions {
  /** The CI system's name in KCIDB, e.g. "xentest": lower-case letters, digits, underscores. */
  origin: string;
  /** The Xen tree as the night's control file names it, when known (it is not part of the night's record). */
  tree?: {
    /** The [Locations] key, e.g. "xen-unstable". */
    name?: string;
    /** What the URL is: only a git repository's becomes git_repository_url. */
    kind?: 'git' | 'tarball' | 'directory';
    /** Where it was fetched from. */
    url?: string;
    /** The git ref the control file asked for (branch, tag or commit). */
    ref?: string;
  };
}

type Misc = Record<string, unknown>;

export interface KcidbCheckout {
  id: string;
  origin: string;
  tree_name?: string;
  git_repository_url?: string;
  git_commit_hash?: string;
  start_time?: string;
  origin_builds_finish_time?: string;
  origin_tests_finish_time?: string;
  valid?: boolean;
  comment?: string;
  misc?: Misc;
}

export interface KcidbBuild {
  id: string;
  origin: string;
  checkout_id: string;
  comment?: string;
  start_time?: string;
  duration?: number;
  status?: KcidbStatus;
  log_excerpt?: string;
  misc?: Misc;
}

export interface KcidbTest {
  id: string;
  origin: string;
  build_id: string;
  path: string;
  status?: KcidbStatus;
  comment?: string;
  start_time?: string;
  duration?: number;
  log_excerpt?: string;
  environment?: { comment?: string; misc?: Misc };
  misc?: Misc;
}

export interface KcidbData {
  version: { major: number; minor: number };
  checkouts: KcidbCheckout[];
  builds: KcidbBuild[];
  tests: KcidbTest[];
}

export function kcidbStatus(status: JobStatus): KcidbStatus {
  switch (status) {
    case 'GOOD':
    case 'WARN':
      return 'PASS';
    case 'FAIL':
      return 'FAIL';
    case 'ERROR':
    case 'ABORT':
    case 'BUG':
    case 'ALERT':
      return 'ERROR';
    case 'RUNNING':
    case 'NOSTATUS':
      return 'MISS';
    case 'TEST_NA':
      return 'SKIP';
  }
}

export function toKcidb(night: NightRecord, options: KcidbOptions): KcidbData {
  const { origin } = options;
  if (!KCIDB_ORIGIN_PATTERN.test(origin)) {
    throw new Error(`KCIDB origin "${origin}" is not lower-case letters, digits and underscores`);
  }
  const id = (...parts: Array<string | number | null>): string => `${origin}:${stableId(parts)}`;
  const checkoutId = id('checkout', night.machine, night.night);
  const xenBuildId = id('build', night.machine, night.night, 'xen');
  const nightMisc: Misc = { machine: clean(night.machine), night: clean(night.night) };

  const checkout = makeCheckout(night, options, checkoutId, nightMisc);
  const builds: KcidbBuild[] = [];
  const tests: KcidbTest[] = [];

  const bootStep = findStep(night, 'reboot');
  const hasTests = night.domains.length > 0 || (bootStep?.status ?? null) !== null;
  const xen = makeBuild(night, 'xen', { id: xenBuildId, origin, checkout_id: checkoutId }, nightMisc, hasTests);
  if (xen) builds.push(xen);
  const linuxId = id('build', night.machine, night.night, 'linux');
  const linux = makeBuild(night, 'linux', { id: linuxId, origin, checkout_id: checkoutId }, nightMisc, false);
  if (linux) builds.push(linux);

  if (bootStep && bootStep.status !== null) {
    tests.push(
      withReason(
        {
          id: id('boot', night.machine, night.night),
          origin,
          build_id: xenBuildId,
          path: 'boot',
          status: kcidbStatus(bootStep.status),
          comment: 'boot of the new build (the reboot step)',
          ...times(isoFromString(bootStep.started), stepSeconds(bootStep)),
          environment: { comment: `dom0 of ${clean(night.machine)}`, misc: { machine: clean(night.machine) } },
          misc: compact({
            ...nightMisc,
            step: 'reboot',
            autotest_status: bootStep.status,
            xen_version: night.build.xenVersion,
            xen_build_id: night.build.xenBuildId,
            kernel: night.build.kernel,
          }),
        },
        bootStep.reason,
      ),
    );
  }

  for (const domain of night.domains) {
    const domainPath = `xen.${pathComponent(domain.name, true)}`;
    tests.push(domainTest(domain, domainPath, id('domain', night.machine, night.night, domain.name), origin, xenBuildId, night, nightMisc));
    const seen = new Map<string, number>();
    for (const test of domain.tests) {
      const key = JSON.stringify([test.name, test.subdir]);
      const occurrence = seen.get(key) ?? 0;
      seen.set(key, occurrence + 1);
      const testId = id('test', night.machine, night.night, domain.name, test.name, test.subdir, occurrence);
      tests.push(testRun(test, domain, `${domainPath}.${testPath(test.name)}`, testId, origin, xenBuildId, night, nightMisc));
    }
  }

  return { version: { ...KCIDB_VERSION }, checkouts: [checkout], builds, tests };
}

function makeCheckout(night: NightRecord, options: KcidbOptions, id: string, nightMisc: Misc): KcidbCheckout {
  const c: KcidbCheckout = { id, origin: options.origin };
  const tree = options.tree ?? {};
  if (tree.name !== undefined && tree.name !== '') c.tree_name = clean(tree.name);
  const gitUrl = tree.url === undefined || tree.kind !== 'git' ? null : httpsGitUrl(tree.url);
  if (gitUrl !== null) c.git_repository_url = gitUrl;
  const identity = night.build.xenTree;
  const sha1 = identity?.match(/^git:([0-9a-f]{40})$/)?.[1];
  if (sha1 !== undefined) c.git_commit_hash = sha1;
  const start = isoFromString(night.started);
  if (start !== null) c.start_time = start;
  const finished = isoFromString(night.finished);
  if (finished !== null) {
    // The night is over: every build and test it was going to do is done.
    const buildEnds = (['xen', 'linux'] as const)
      .flatMap((t) => buildSteps(night, t))
      .map((s) => isoFromString(s.finished))
      .filter((t): t is string => t !== null)
      .sort();
    c.origin_builds_finish_time = buildEnds.at(-1) ?? finished;
    c.origin_tests_finish_time = finished;
  }
  const fetch = findStep(night, 'fetch');
  if (fetch && fetch.status !== null && fetch.status !== 'TEST_NA') c.valid = kcidbStatus(fetch.status) === 'PASS';
  c.comment = `Xen tree tested by ${clean(night.machine)} on night ${clean(night.night)}`;
  c.misc = compact({
    ...nightMisc,
    xen_tree: identity,
    source_url: tree.url === undefined ? null : withoutCredentials(tree.url),
    ref: tree.ref,
    night_status: night.status,
    night_reason: night.reason === '' ? null : night.reason,
    fetch_reason: fetch && fetch.reason !== '' ? fetch.reason : null,
  });
  return c;
}

/**
 * A tree's build, from its build and install steps; null when neither was
 * entered and nothing needs the build to hang from (a night that ended
 * before building).
 */
function makeBuild(
  night: NightRecord,
  tree: 'xen' | 'linux',
  ids: Pick<KcidbBuild, 'id' | 'origin' | 'checkout_id'>,
  nightMisc: Misc,
  needed: boolean,
): KcidbBuild | null {
  const steps = buildSteps(night, tree);
  const entered = steps.filter((s) => s.started !== null || s.status !== null);
  if (entered.length === 0 && !needed) return null;
  const b: KcidbBuild = { ...ids, comment: `${tree} build` };
  const first = steps.find((s) => s.started !== null);
  const start = isoFromString(first?.started ?? null);
  if (start !== null) b.start_time = start;
  const durations = steps.map(stepSeconds).filter((d): d is number => d !== null);
  if (durations.length > 0) b.duration = durations.reduce((a, d) => a + d, 0);

  const statuses = steps.map((s) => s.status).filter((s): s is JobStatus => s !== null);
  const worst = worstStatus(statuses);
  const allEnded = steps.length > 0 && statuses.length === steps.length;
  let rebuilt: boolean | null = null;
  if (worst === 'TEST_NA') {
    // Skipped because the tree is what the last good night built: that build is what booted.
    b.status = 'PASS';
    rebuilt = false;
  } else if (worst !== null && (allEnded || kcidbStatus(worst) !== 'PASS')) {
    b.status = kcidbStatus(worst);
    rebuilt = true;
  }
  const failed = steps.find((s) => s.status !== null && s.status === worst && s.reason !== '');
  if (failed && b.status !== 'PASS') b.log_excerpt = excerpt(failed.reason);
  b.misc = compact({
    ...nightMisc,
    tree: tree === 'xen' ? night.build.xenTree : night.build.linuxTree,
    rebuilt,
    xen_version: tree === 'xen' ? night.build.xenVersion : null,
    xen_build_id: tree === 'xen' ? night.build.xenBuildId : null,
    kernel: tree === 'linux' ? night.build.kernel : null,
    steps: steps.map((s: StepResultRecord) => compact({ name: s.name, autotest_status: s.status, reason: s.reason === '' ? null : s.reason })),
  });
  return b;
}

function domainTest(
  domain: DomainRecord,
  path: string,
  id: string,
  origin: string,
  buildId: string,
  night: NightRecord,
  nightMisc: Misc,
): KcidbTest {
  return withReason(
    {
      id,
      origin,
      build_id: buildId,
      path,
      status: kcidbStatus(domain.status),
      comment: `domain ${clean(domain.name)} as dom0 saw it`,
      environment: environment(domain, night),
      misc: compact({ ...nightMisc, domain: clean(domain.name), autotest_status: domain.status, tests: domain.tests.length }),
    },
    domain.reason,
  );
}

function testRun(
  test: TestRecord,
  domain: DomainRecord,
  path: string,
  id: string,
  origin: string,
  buildId: string,
  night: NightRecord,
  nightMisc: Misc,
): KcidbTest {
  return withReason(
    {
      id,
      origin,
      build_id: buildId,
      path,
      status: kcidbStatus(test.status),
      comment: clean(test.name),
      ...times(isoFromEpochSeconds(test.started), testSeconds(test.started, test.finished)),
      environment: environment(domain, night),
      misc: compact({
        ...nightMisc,
        domain: clean(domain.name),
        test: clean(test.name),
        autotest_status: test.status,
        subdir: test.subdir === null ? null : clean(test.subdir),
        kernel: clean(test.kernel.base),
      }),
    },
    test.reason,
  );
}

function environment(domain: DomainRecord, night: NightRecord): KcidbTest['environment'] {
  return {
    comment: `domain ${clean(domain.name)} on ${clean(night.machine)}`,
    misc: { machine: clean(night.machine), domain: clean(domain.name) },
  };
}

function times(start: string | null, duration: number | null): { start_time?: string; duration?: number } {
  const t: { start_time?: string; duration?: number } = {};
  if (start !== null) t.start_time = start;
  if (duration !== null) t.duration = duration;
  return t;
}

function withReason(obj: KcidbTest, reason: string): KcidbTest {
  if (reason !== '') obj.log_excerpt = excerpt(reason);
  return obj;
}

/**
 * A path component made of [A-Za-z0-9_-] only. In a hostname the dots go
 * too; one character beyond the BMP is one "_", not two.
 */
export function pathComponent(s: string, dotsToo = false): string {
  const out = Array.from(s, (c) => (/^[A-Za-z0-9_-]$/.test(c) || (!dotsToo && c === '.') ? c : '_')).join('');
  return out === '' ? '_' : out;
}

/** A test name as a dotted path: its own dots separate components, and none is empty. */
export function testPath(name: string): string {
  return name
    .split('.')
    .map((part) => pathComponent(part, true))
    .join('.');
}

/** The schema's git_repository_url: https:// only (a git+https:// form loses its prefix). */
function httpsGitUrl(url: string): string | null {
  const u = url.startsWith('git+https://') ? url.slice('git+'.length) : url;
  if (!u.startsWith('https://')) return null;
  try {
    return withoutCredentials(new URL(u).href);
  } catch {
    return null;
  }
}

/** A URL as it may be published: a user name or token in it stays on the machine. */
function withoutCredentials(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url;
  }
  if (u.username === '' && u.password === '') return url;
  u.username = '';
  u.password = '';
  return u.href;
}

/**
 * Text as KCIDB stores it: no NUL (every string pattern refuses it, and the
 * database cannot store it) and no unpaired surrogate (not valid Unicode,
 * refused by JSON readers that check).
 */
export function clean(s: string): string {
  return s.replace(/\0/g, '').replace(/\p{Surrogate}/gu, '\uFFFD');
}

/** A log excerpt within the schema's limit, counted in code points as JSON Schema counts string length. */
function excerpt(s: string): string {
  const cps = Array.from(clean(s));
  return cps.length <= KCIDB_LOG_EXCERPT_MAX ? cps.join('') : cps.slice(0, KCIDB_LOG_EXCERPT_MAX).join('');
}

/** misc without nulls and undefineds (the schema allows no null anywhere, misc included by convention). */
function compact(m: Record<string, unknown>): Misc {
  const out: Misc = {};
  for (const [k, v] of Object.entries(m)) {
    if (v === null || v === undefined) continue;
    out[k] = typeof v === 'string' ? clean(v) : v;
  }
  return out;
}

function stableId(parts: Array<string | number | null>): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 32);
}
