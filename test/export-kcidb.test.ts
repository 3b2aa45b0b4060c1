/**
 * `toKcidb`: valid against the real KCIDB I/O schema (v5.3, vendored in
 * test/fixtures/kcidb/) by Ajv and, where Python's jsonschema is installed,
 * by the validator kcidb-io itself uses; statuses, paths and ids as
 * documented; stable ids; odd text made storable.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import {
  KCIDB_LOG_EXCERPT_MAX,
  KCIDB_VERSION,
  kcidbStatus,
  pathComponent,
  testPath,
  toKcidb,
  type KcidbData,
  type KcidbTest,
} from '../agent/results/export/kcidb.js';
import type { DomainRecord, NightRecord, StepResultRecord, TestRecord } from '../agent/results/record.js';
import { JOB_STATUSES, type JobStatus } from '../shared/statuslog/entry.js';
import { REPO_ROOT } from './support/cli.js';

const SCHEMA_FILE = join(REPO_ROOT, 'test/fixtures/kcidb/kcidb-io.schema.v5.3.json');
const SCHEMA = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as object;

// ajv-formats is CommonJS: its plugin is the module's default export.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;
const ajv = addFormats(new Ajv({ allErrors: true, strict: true }));
const validate = ajv.compile(SCHEMA);

function schemaErrors(data: unknown): string[] {
  return validate(data) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
}

const PY_VALIDATE = `
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
v = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
print(json.dumps([e.json_path + ": " + e.message for e in v.iter_errors(json.load(sys.stdin))]))
`;

function hasPythonJsonschema(): boolean {
  return spawnSync('python3', ['-c', 'import jsonschema'], { encoding: 'utf8' }).status === 0;
}

const T0 = Date.parse('2026-01-01T02:00:00Z') / 1000;
const KERNEL = { base: '6.1.0', patches: [], hash: '0123456789abcdef0123456789abcdef' };
const SHA1 = '0123456789abcdef0123456789abcdef01234567';

function testRecord(name: string, status: JobStatus, reason = '', extra: Partial<TestRecord> = {}): TestRecord {
  return { name, status, reason, subdir: name, kernel: KERNEL, started: T0 + 600, finished: T0 + 660.5, keyval: {}, iterations: [], ...extra };
}

function stepRecord(name: string, status: JobStatus | null, reason = '', ran = true): StepResultRecord {
  return ran
    ? { name, status, reason, started: '2026-01-01T02:00:00.000Z', finished: status === null ? null : '2026-01-01T02:01:30.250Z', durationMs: status === null ? null : 90_250 }
    : { name, status, reason, started: null, finished: null, durationMs: null };
}

const STEPS = ['fetch', 'build.xen', 'install.xen', 'build.linux', 'install.linux', 'bootloader', 'reboot', 'domains.dispatch', 'domains.start', 'domains.wait', 'domains.collect'];

const ODD_NAME = `odd <&> "dq" 'sq' ]]> \u0001\u001b tab\tnl\n end 😀 é \u0000nul`;
const ODD_REASON = `line1\r\nline2 ]]> \u0000nul \ud800lone 𝄞 \ufffe`;

function fullNight(overrides: Partial<NightRecord> = {}): NightRecord {
  const domains: DomainRecord[] = [
    { name: 'xenhost1', status: 'GOOD', reason: '', tests: JOB_STATUSES.map((s) => testRecord(`t_${s}`, s, s === 'GOOD' ? '' : `reason for ${s}`)) },
    {
      name: 'guest.example',
      status: 'WARN',
      reason: ODD_REASON,
      tests: [
        testRecord(ODD_NAME, 'FAIL', ODD_REASON),
        testRecord('boot.0', 'GOOD', 'completed successfully', { started: null, finished: null }),
        testRecord('network_Ping.4k', 'WARN', 'slow'),
        testRecord('..dots..', 'GOOD'),
        testRecord('again', 'GOOD', '', { subdir: 'again' }),
        testRecord('again', 'FAIL', 'second run', { subdir: 'again' }),
      ],
    },
    { name: 'empty', status: 'ERROR', reason: 'xl create failed', tests: [] },
  ];
  return {
    machine: 'xenhost1',
    night: '20260101T020000Z',
    dir: '/var/lib/xentest/nights/20260101T020000Z',
    started: '2026-01-01T02:00:00.000Z',
    finished: '2026-01-01T04:00:00.000Z',
    status: 'ERROR',
    reason: 'domain empty did not start',
    build: { xenTree: `git:${SHA1}`, linuxTree: `sha256:${'b'.repeat(64)}`, xenVersion: '4.19-unstable', xenBuildId: 'deadbeef', kernel: '6.1.0-xen' },
    steps: STEPS.map((n) => stepRecord(n, n === 'domains.start' ? 'ERROR' : 'GOOD', n === 'domains.start' ? 'domain empty did not start' : '')),
    domains,
    ...overrides,
  };
}

function earlyFailure(): NightRecord {
  return fullNight({
    status: 'ERROR',
    reason: 'cannot fetch',
    build: { xenTree: null, linuxTree: null, xenVersion: null, xenBuildId: null, kernel: null },
    steps: STEPS.filter((n) => !n.includes('linux')).map((n) => (n === 'fetch' ? stepRecord(n, 'ERROR', 'cannot fetch xen-unstable: 404') : stepRecord(n, null, '', false))),
    domains: [],
  });
}

function unchangedNight(): NightRecord {
  const skip = 'the tree is what the last good night built';
  return fullNight({
    build: { xenTree: `sha256:${'c'.repeat(64)}`, linuxTree: null, xenVersion: '4.19-unstable', xenBuildId: 'deadbeef', kernel: '6.1.0' },
    steps: STEPS.filter((n) => !n.includes('linux')).map((n) =>
      n.startsWith('build.') || n.startsWith('install.') || n === 'bootloader' || n === 'reboot' ? stepRecord(n, 'TEST_NA', skip, false) : stepRecord(n, 'GOOD'),
    ),
  });
}

function bootFailure(): NightRecord {
  return fullNight({
    steps: STEPS.map((n) =>
      n === 'reboot' ? stepRecord(n, 'ABORT', 'the new build did not boot') : n.startsWith('domains.') ? stepRecord(n, null, '', false) : stepRecord(n, 'GOOD'),
    ),
    domains: [],
  });
}

function buildFailure(): NightRecord {
  return fullNight({
    steps: STEPS.map((n) =>
      n === 'build.xen' ? stepRecord(n, 'FAIL', 'make: *** [xen] Error 2') : STEPS.indexOf(n) > 1 ? stepRecord(n, null, '', false) : stepRecord(n, 'GOOD'),
    ),
    domains: [],
  });
}

const TREE = { name: 'xen-unstable', kind: 'git', url: 'git+https://xenbits.xen.org/git-http/xen.git', ref: 'staging' } as const;

function testAt(data: KcidbData, path: string): KcidbTest[] {
  return data.tests.filter((t) => t.path === path);
}

describe('KCIDB export', () => {
  const nights: Array<[string, NightRecord]> = [
    ['a night with every status, odd names and an empty domain', fullNight()],
    ['a night that failed before the domains', earlyFailure()],
    ['a night on an unchanged tree', unchangedNight()],
    ['a night whose build did not boot', bootFailure()],
    ['a night whose build failed', buildFailure()],
    ['a night in progress', fullNight({ finished: null, status: null, steps: fullNight().steps.map((s) => (s.name === 'domains.wait' ? stepRecord(s.name, null) : s)) })],
  ];

  for (const [what, night] of nights) {
    describe(what, () => {
      const data = toKcidb(night, { origin: 'xentest', tree: TREE });

      it('is valid against the KCIDB v5.3 schema (Ajv, with formats)', () => {
        expect(schemaErrors(data)).to.deep.equal([]);
        expect(schemaErrors(toKcidb(night, { origin: 'lab_2' }))).to.deep.equal([]);
      });

      it("is valid by kcidb-io's own validator (jsonschema Draft7Validator, with its format checker)", function () {
        if (!hasPythonJsonschema()) this.skip();
        const r = spawnSync('python3', ['-c', PY_VALIDATE, SCHEMA_FILE], { input: JSON.stringify(data), encoding: 'utf8' });
        expect(r.status, r.stderr).to.equal(0);
        expect(JSON.parse(r.stdout)).to.deep.equal([]);
      });

      it('has unique ids, stable across exports, that link tests to builds to the checkout', () => {
        const again = toKcidb(night, { origin: 'xentest', tree: TREE });
        expect(again).to.deep.equal(data);
        const ids = [...data.checkouts, ...data.builds, ...data.tests].map((o) => o.id);
        expect(new Set(ids).size).to.equal(ids.length);
        for (const o of [...data.checkouts, ...data.builds, ...data.tests]) expect(o.id.startsWith('xentest:')).to.equal(true);
        const checkout = data.checkouts[0];
        for (const b of data.builds) expect(b.checkout_id).to.equal(checkout?.id);
        const xen = data.builds.find((b) => b.comment === 'xen build');
        for (const t of data.tests) expect(t.build_id).to.equal(xen?.id);
        expect(data.version).to.deep.equal({ major: 5, minor: 3 });
      });
    });
  }

  it('maps every autotest status as documented, and keeps the autotest status and reason', () => {
    const expected: Record<JobStatus, string> = {
      GOOD: 'PASS',
      WARN: 'PASS',
      FAIL: 'FAIL',
      ERROR: 'ERROR',
      ABORT: 'ERROR',
      BUG: 'ERROR',
      ALERT: 'ERROR',
      RUNNING: 'MISS',
      NOSTATUS: 'MISS',
      TEST_NA: 'SKIP',
    };
    const data = toKcidb(fullNight(), { origin: 'xentest' });
    for (const s of JOB_STATUSES) {
      expect(kcidbStatus(s), s).to.equal(expected[s]);
      const [t] = testAt(data, `xen.xenhost1.t_${s}`);
      expect(t?.status, s).to.equal(expected[s]);
      expect(t?.misc?.autotest_status, s).to.equal(s);
      if (s === 'GOOD') expect(t).to.not.have.property('log_excerpt');
      else expect(t?.log_excerpt, s).to.equal(`reason for ${s}`);
      expect(t?.start_time).to.equal('2026-01-01T02:10:00.000Z');
      expect(t?.duration).to.equal(60.5);
      expect(t?.environment).to.deep.equal({ comment: 'domain xenhost1 on xenhost1', misc: { machine: 'xenhost1', domain: 'xenhost1' } });
    }
  });

  it('makes dotted paths xen.<domain>.<test> of the allowed characters, keeping the names in misc', () => {
    const data = toKcidb(fullNight(), { origin: 'xentest' });
    const pathRe = /^([a-zA-Z0-9_-]+(\.[a-zA-Z0-9_-]+)*)?$/;
    for (const t of data.tests) expect(t.path, t.path).to.match(pathRe);
    const paths = data.tests.map((t) => t.path);
    expect(paths).to.include.members(['boot', 'xen.xenhost1', 'xen.guest_example', 'xen.empty', 'xen.guest_example.boot.0', 'xen.guest_example.network_Ping.4k', 'xen.guest_example._._.dots._._']);
    const odd = data.tests.find((t) => t.misc?.autotest_status === 'FAIL' && t.path.startsWith('xen.guest_example.odd'));
    // One "_" per character outside [A-Za-z0-9_-] (the emoji is one character); the NUL is gone from the name kept in misc.
    expect(odd?.path).to.equal('xen.guest_example.odd______dq___sq_________tab_nl__end______nul');
    expect(odd?.misc?.test).to.equal(ODD_NAME.replace('\u0000', ''));
    expect(odd?.comment).to.equal(ODD_NAME.replace('\u0000', ''));
    expect(odd?.misc?.domain).to.equal('guest.example');
    expect(pathComponent('a.b')).to.equal('a.b');
    expect(pathComponent('a.b', true)).to.equal('a_b');
    expect(pathComponent('')).to.equal('_');
    expect(testPath('')).to.equal('_');
    expect(testPath('a..b.')).to.equal('a._.b._');
    expect(testPath('𝄞x')).to.equal('_x');
  });

  it('gives a test run again in the same domain its own id, and the same id in every export', () => {
    const a = toKcidb(fullNight(), { origin: 'xentest' });
    const runs = testAt(a, 'xen.guest_example.again');
    expect(runs.map((t) => t.status)).to.deep.equal(['PASS', 'FAIL']);
    expect(runs[0]?.id).to.not.equal(runs[1]?.id);
    // Another origin: the same ids after the prefix. Another night: other ids.
    const b = toKcidb(fullNight(), { origin: 'other' });
    expect(b.tests.map((t) => t.id.replace(/^other:/, ''))).to.deep.equal(a.tests.map((t) => t.id.replace(/^xentest:/, '')));
    const c = toKcidb(fullNight({ night: '20260102T020000Z' }), { origin: 'xentest' });
    const aIds = new Set(a.tests.map((t) => t.id));
    for (const t of c.tests) expect(aIds.has(t.id)).to.equal(false);
  });

  it('identifies the checkout by its git commit, and names the tree when the control file is known', () => {
    const [git] = toKcidb(fullNight(), { origin: 'xentest', tree: TREE }).checkouts;
    expect(git).to.deep.include({
      origin: 'xentest',
      tree_name: 'xen-unstable',
      git_repository_url: 'https://xenbits.xen.org/git-http/xen.git',
      git_commit_hash: SHA1,
      start_time: '2026-01-01T02:00:00.000Z',
      origin_builds_finish_time: '2026-01-01T02:01:30.250Z',
      origin_tests_finish_time: '2026-01-01T04:00:00.000Z',
      valid: true,
    });
    expect(git?.misc).to.include({ machine: 'xenhost1', night: '20260101T020000Z', xen_tree: `git:${SHA1}`, ref: 'staging', night_status: 'ERROR' });
    // A tarball: no commit; a URL the schema does not take (git://, a path): kept in misc only.
    const [tar] = toKcidb(unchangedNight(), { origin: 'xentest', tree: { name: 'xen-4.17', kind: 'tarball', url: 'https://mirror.example.org/xen-4.17.5.tar.gz' } }).checkouts;
    expect(tar).to.not.have.property('git_commit_hash');
    expect(tar).to.not.have.property('git_repository_url');
    expect(tar?.misc).to.include({ xen_tree: `sha256:${'c'.repeat(64)}`, source_url: 'https://mirror.example.org/xen-4.17.5.tar.gz' });
    const [gitProtocol] = toKcidb(fullNight(), { origin: 'xentest', tree: { name: 'xen', kind: 'git', url: 'git://xenbits.xen.org/xen.git' } }).checkouts;
    expect(gitProtocol).to.not.have.property('git_repository_url');
    expect(gitProtocol?.misc).to.include({ source_url: 'git://xenbits.xen.org/xen.git' });
    // A commit of a SHA-256 repository is not a KCIDB commit hash.
    const [sha256git] = toKcidb(fullNight({ build: { ...fullNight().build, xenTree: `git:${'d'.repeat(64)}` } }), { origin: 'xentest' }).checkouts;
    expect(sha256git).to.not.have.property('git_commit_hash');
    expect(sha256git).to.not.have.property('tree_name');
    // A token in the URL is not published.
    const [secret] = toKcidb(fullNight(), { origin: 'xentest', tree: { kind: 'git', url: 'https://ci:t0ken@git.example.org/xen.git' } }).checkouts;
    expect(secret?.git_repository_url).to.equal('https://git.example.org/xen.git');
    expect(JSON.stringify(secret)).to.not.include('t0ken');
    // In progress: no finish times yet.
    const [running] = toKcidb(fullNight({ finished: null }), { origin: 'xentest' }).checkouts;
    expect(running).to.not.have.property('origin_tests_finish_time');
    expect(running).to.not.have.property('origin_builds_finish_time');
  });

  it('takes the build status from the build steps', () => {
    const full = toKcidb(fullNight(), { origin: 'xentest' });
    expect(full.builds.map((b) => [b.comment, b.status, b.duration])).to.deep.equal([
      ['xen build', 'PASS', 180.5],
      ['linux build', 'PASS', 180.5],
    ]);
    expect(full.builds[1]?.misc).to.include({ tree: `sha256:${'b'.repeat(64)}`, kernel: '6.1.0-xen', rebuilt: true });
    expect(full.builds[0]?.misc).to.include({ xen_version: '4.19-unstable', xen_build_id: 'deadbeef' });

    const failed = toKcidb(buildFailure(), { origin: 'xentest' });
    expect(failed.builds.map((b) => [b.comment, b.status])).to.deep.equal([['xen build', 'FAIL']]);
    expect(failed.builds[0]?.log_excerpt).to.equal('make: *** [xen] Error 2');
    expect(failed.tests).to.deep.equal([]);

    // Not rebuilt: the tree is what the last good night built, and that build is what runs.
    const unchanged = toKcidb(unchangedNight(), { origin: 'xentest' });
    expect(unchanged.builds).to.have.length(1);
    expect(unchanged.builds[0]?.status).to.equal('PASS');
    expect(unchanged.builds[0]?.misc?.rebuilt).to.equal(false);
    expect(testAt(unchanged, 'boot')[0]?.status).to.equal('SKIP');

    // A build still running has no status yet.
    const running = toKcidb(fullNight({ finished: null, steps: [stepRecord('fetch', 'GOOD'), stepRecord('build.xen', null)], domains: [] }), { origin: 'xentest' });
    expect(running.builds[0]).to.not.have.property('status');
    expect(running.builds[0]?.start_time).to.equal('2026-01-01T02:00:00.000Z');
  });

  it('reports the boot, each domain as dom0 saw it, and an empty domain', () => {
    const boot = testAt(toKcidb(bootFailure(), { origin: 'xentest' }), 'boot');
    expect(boot).to.have.length(1);
    expect(boot[0]).to.deep.include({ status: 'ERROR', log_excerpt: 'the new build did not boot', duration: 90.25 });
    expect(boot[0]?.misc).to.include({ step: 'reboot', autotest_status: 'ABORT' });
    const data = toKcidb(fullNight(), { origin: 'xentest' });
    expect(testAt(data, 'xen.empty')[0]).to.deep.include({ status: 'ERROR', log_excerpt: 'xl create failed' });
    expect(testAt(data, 'xen.empty')[0]?.misc).to.include({ tests: 0 });
    expect(data.tests.filter((t) => t.path.startsWith('xen.empty.'))).to.deep.equal([]);
    expect(testAt(data, 'xen.guest_example')[0]?.status).to.equal('PASS');
  });

  it('shows a night that failed before the domains as an invalid checkout with nothing built or tested', () => {
    const data = toKcidb(earlyFailure(), { origin: 'xentest' });
    expect(data.checkouts[0]?.valid).to.equal(false);
    expect(data.checkouts[0]?.misc).to.include({ fetch_reason: 'cannot fetch xen-unstable: 404', night_status: 'ERROR', night_reason: 'cannot fetch' });
    expect(data.builds).to.deep.equal([]);
    expect(data.tests).to.deep.equal([]);
  });

  it('makes text storable: no NUL, no unpaired surrogate, log excerpts within 16384 characters', () => {
    const data = toKcidb(fullNight(), { origin: 'xentest' });
    const json = JSON.stringify(data);
    expect(json).to.not.include('\\u0000');
    expect(json).to.not.match(/\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f])/i);
    const domain = testAt(data, 'xen.guest_example')[0];
    expect(domain?.log_excerpt).to.equal('line1\r\nline2 ]]> nul \uFFFDlone 𝄞 \ufffe');

    const long = '𝄞'.repeat(KCIDB_LOG_EXCERPT_MAX + 10);
    const big = toKcidb(fullNight({ domains: [{ name: 'd', status: 'FAIL', reason: long, tests: [testRecord('t', 'FAIL', long)] }] }), { origin: 'xentest' });
    for (const t of big.tests.filter((x) => x.path.startsWith('xen.'))) {
      expect(Array.from(t.log_excerpt ?? '')).to.have.length(KCIDB_LOG_EXCERPT_MAX);
    }
    expect(schemaErrors(big)).to.deep.equal([]);
  });

  it('refuses an origin the schema does not allow', () => {
    for (const origin of ['', 'Xentest', 'xen-test', 'a:b', 'é']) {
      expect(() => toKcidb(fullNight(), { origin }), origin).to.throw(/origin/);
    }
  });

  describe('the vendored schema', () => {
    it('is KCIDB v5.3, the version the export writes', () => {
      expect(KCIDB_VERSION).to.deep.equal({ major: 5, minor: 3 });
      expect(schemaErrors({ version: { major: 5, minor: 3 } })).to.deep.equal([]);
      expect(schemaErrors({ version: { major: 5, minor: 4 } })).to.not.deep.equal([]);
      expect(schemaErrors({ version: { major: 4, minor: 0 } })).to.not.deep.equal([]);
    });

    it('refuses what KCIDB refuses, so a pass means something', () => {
      const good = toKcidb(fullNight(), { origin: 'xentest' });
      const t0 = good.tests[0] as KcidbTest;
      const bad: Array<[string, unknown]> = [
        ['a status KCIDB does not have', { ...good, tests: [{ ...t0, status: 'GOOD' }] }],
        ['an empty path component', { ...good, tests: [{ ...t0, path: 'xen..a' }] }],
        ['a path with a space', { ...good, tests: [{ ...t0, path: 'xen.a b' }] }],
        ['an origin with a capital', { ...good, tests: [{ ...t0, origin: 'Xen' }] }],
        ['an id without an origin', { ...good, tests: [{ ...t0, id: 'nocolon' }] }],
        ['a NUL in a comment', { ...good, tests: [{ ...t0, comment: 'a\u0000b' }] }],
        ['a time without a zone', { ...good, tests: [{ ...t0, start_time: '2026-01-01T02:00:00' }] }],
        ['a property the schema does not have', { ...good, tests: [{ ...t0, name: 'x' }] }],
        ['a test without a build', { ...good, tests: [{ id: 'xentest:1', origin: 'xentest' }] }],
        ['a git:// repository URL', { ...good, checkouts: [{ ...good.checkouts[0], git_repository_url: 'git://x/y.git' }] }],
        ['a short commit hash', { ...good, checkouts: [{ ...good.checkouts[0], git_commit_hash: 'abc123' }] }],
        ['a log excerpt over the limit', { ...good, tests: [{ ...t0, log_excerpt: 'x'.repeat(KCIDB_LOG_EXCERPT_MAX + 1) }] }],
        ['null', { ...good, tests: [{ ...t0, comment: null }] }],
      ];
      for (const [what, data] of bad) expect(schemaErrors(data), what).to.not.deep.equal([]);
    });
  });
});
