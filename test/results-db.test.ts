/**
 * The results database (agent/results/db/): schema and migrations, storing a
 * night, re-ingesting, rebuilding, and surviving a process killed in the
 * middle of an ingest. Every test runs on SQLite and on PostgreSQL (when
 * XENTEST_TEST_PG_URL is set; pending otherwise).
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ResultsDbError } from '../agent/results/db/errors.js';
import { LATEST_VERSION, MIGRATIONS, nightOrd } from '../agent/results/db/schema.js';
import { InvalidNightRecord } from '../agent/results/db/store.js';
import type { NightRecord } from '../agent/results/record.js';
import { describeDriver, DRIVERS, nightId, nightRecord, startedAt, type TestDatabase, type TestSpec } from './support/results-db.js';

const OPEN_JS = new URL('../agent/results/db/open.js', import.meta.url).href;

/** A night of `domains` domains with `perDomain` tests each, every test with three keyvals and a perf figure. */
function bigNight(day: number, perDomain: number, reason: string, domains = 10): NightRecord {
  const spec: Record<string, TestSpec[]> = {};
  for (let d = 0; d < domains; d++) {
    spec[`vm${d}`] = Array.from({ length: perDomain }, (_, i): TestSpec => ({
      name: `t${i}`,
      status: i % 7 === 0 ? 'FAIL' : 'GOOD',
      reason,
      keyval: { domain: `vm${d}`, test: `t${i}`, version: reason },
      iterations: [{ attr: {}, perf: { ops_per_s: i * 1.5 } }],
    }));
  }
  return nightRecord(day, { domains: spec });
}

/** What the database holds of one night, table by table, as the tests compare it. */
async function contentOf(db: TestDatabase, night: string): Promise<Record<string, unknown>> {
  const one = async (sql: string): Promise<unknown> => Object.values((await db.query(sql, [night]))[0] ?? {})[0];
  const n = (v: unknown): number => Number(v);
  return {
    nights: n(await one('SELECT COUNT(*) AS c FROM nights WHERE night = ?')),
    domains: n(await one('SELECT COUNT(*) AS c FROM domains d JOIN nights n ON n.id = d.night_id WHERE n.night = ?')),
    tests: n(await one('SELECT COUNT(*) AS c FROM tests t JOIN nights n ON n.id = t.night_id WHERE n.night = ?')),
    keyvals: n(await one('SELECT COUNT(*) AS c FROM keyvals k JOIN nights n ON n.id = k.night_id WHERE n.night = ?')),
    reasons: ((await db.query('SELECT DISTINCT t.reason FROM tests t JOIN nights n ON n.id = t.night_id WHERE n.night = ? ORDER BY t.reason', [night])) as Array<{ reason: string }>).map(
      (r) => r.reason,
    ),
  };
}

/** Ingests a night in a child process (as `xentest db ingest` would), so that it can be killed. */
function ingestInChild(dir: string, location: string, record: NightRecord, env: NodeJS.ProcessEnv = {}): { child: ChildProcess; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> } {
  const recordFile = join(dir, `night-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(recordFile, JSON.stringify(record));
  const script = join(dir, 'ingest.mjs');
  writeFileSync(
    script,
    `import { readFileSync } from 'node:fs';
     import { openResultsDb, resolveDbLocation } from ${JSON.stringify(OPEN_JS)};
     const db = await openResultsDb(resolveDbLocation(process.argv[2]), { create: true });
     process.stderr.write('opened\\n');
     await db.ingest(JSON.parse(readFileSync(process.argv[3], 'utf8')));
     await db.close();
     process.stderr.write('ingested\\n');`,
  );
  const child = spawn(process.execPath, [script, location, recordFile], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stderr })),
  );
  return { child, done };
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const driver of DRIVERS) {
  describeDriver(driver, 'results database', ({ fresh }) => {
    let work: string;
    beforeEach(() => {
      work = mkdtempSync(join(tmpdir(), 'xentest-dbwork-'));
    });
    afterEach(() => {
      rmSync(work, { recursive: true, force: true });
    });

    describe('schema', () => {
      it('is created at the latest version, each migration recorded once', async () => {
        const t = await fresh();
        const db = await t.open();
        expect(await db.schemaVersion()).to.equal(LATEST_VERSION);
        await db.close();
        // Opening again applies nothing twice.
        await (await t.open()).close();
        const rows = await t.query('SELECT version, description FROM schema_version ORDER BY version');
        expect(rows.map((r) => Number(r.version))).to.deep.equal(MIGRATIONS.map((m) => m.version));
        expect(String(rows[1]?.description)).to.match(/compar/);
        expect(String(rows[2]?.description)).to.match(/source/);
      });

      it('upgrades a version 1 database in place, keeping its nights', async () => {
        const t = await fresh();
        const v1 = await t.open({ upToVersion: 1 });
        expect(await v1.schemaVersion()).to.equal(1);
        await v1.close();
        // Two nights as a xentest of schema version 1 stored them.
        await t.query("INSERT INTO machines (id, name) VALUES (1, 'xenhost')");
        for (const [day, status, passed, result] of [[1, 'GOOD', 1, 'pass'], [2, 'FAIL', 0, 'fail']] as const) {
          const ord = nightOrd(Date.parse(startedAt(day)), nightId(day));
          await t.query(
            `INSERT INTO nights (id, machine_id, night, ord, dir, started, finished, status, reason, build_key, ingested_at)
             VALUES (?, 1, ?, ?, '/nights', ?, NULL, 'GOOD', '', NULL, 'then')`,
            [day, nightId(day), ord, startedAt(day)],
          );
          await t.query("INSERT INTO domains (night_id, name, seq, status, reason) VALUES (?, 'dom0', 0, 'GOOD', '')", [day]);
          await t.query(
            `INSERT INTO tests (night_id, seq, machine_id, domain, ord, name, status, reason, subdir, kernel_base, kernel_hash, started, finished, passed, result)
             VALUES (?, 0, 1, 'dom0', ?, 'sieve', ?, '', 'sieve', '6.1.0', 'h', NULL, NULL, ?, ?)`,
            [day, ord, status, passed, result],
          );
        }
        const indexes = async (): Promise<string[]> =>
          (driver.name === 'sqlite'
            ? await t.query("SELECT name FROM sqlite_master WHERE type = 'index' AND name IN ('tests_history', 'tests_last_pass', 'tests_in_night')")
            : await t.query("SELECT indexname AS name FROM pg_indexes WHERE indexname IN ('tests_history', 'tests_last_pass', 'tests_in_night')")
          ).map((r) => String(r.name));
        expect(await indexes()).to.deep.equal([]);

        const db = await t.open();
        expect(await db.schemaVersion()).to.equal(LATEST_VERSION);
        expect((await indexes()).sort()).to.deep.equal(['tests_history', 'tests_in_night', 'tests_last_pass']);
        const night = (await db.findNights(nightId(2)))[0];
        expect(night?.night).to.equal(nightId(2));
        const facts = await db.compareFacts(night!, null);
        expect(facts.tests.map((f) => [f.name, f.result, f.refNight, f.refResult])).to.deep.equal([['sieve', 'fail', nightId(1), 'pass']]);
        await db.close();
      });

      it('refuses a database made by a newer xentest, saying what to do', async () => {
        const t = await fresh();
        await (await t.open()).close();
        await t.query("INSERT INTO schema_version (version, description, applied_at) VALUES (99, 'from the future', 'now')");
        let error: unknown;
        await t.open().catch((e: unknown) => (error = e));
        expect(error).to.be.instanceOf(ResultsDbError);
        expect((error as ResultsDbError).message).to.include(`schema version 99, newer than this xentest knows (${LATEST_VERSION})`);
        expect((error as ResultsDbError).hint).to.match(/db rebuild/);
      });

      if (driver.name === 'sqlite') {
        it('keeps the file in WAL mode', async () => {
          const t = await fresh();
          await (await t.open()).close();
          expect((await t.query('PRAGMA journal_mode'))[0]).to.deep.equal({ journal_mode: 'wal' });
        });
      }
    });

    describe('ingest', () => {
      it('stores the machine, the build, the steps, the domains, the tests and their keyvals (perf figures as numbers)', async () => {
        const t = await fresh();
        const db = await t.open();
        const record = nightRecord(1, {
          build: 'sha256:abc',
          domains: {
            dom0: [
              { name: 'SERVER_JOB', status: 'GOOD', subdir: '----' },
              {
                name: 'sieve',
                status: 'GOOD',
                keyval: { exit_status: '0', privileged: 'yes' },
                iterations: [
                  { attr: { cpu: 'x86' }, perf: { primes: 9592, seconds: 0.25 } },
                  { attr: {}, perf: { primes: 9592, seconds: 0.5 } },
                ],
              },
            ],
            vm1: [{ name: 'settime', status: 'GOOD', reason: 'failed as expected in an unprivileged domain' }],
          },
        });
        record.domains[1]!.status = 'ABORT';
        record.domains[1]!.reason = 'did not finish';
        const r = await db.ingest(record);
        expect(r).to.deep.equal({ machine: 'xenhost', night: nightId(1), domains: 2, tests: 3, replaced: false });

        const night = (await db.findNights(nightId(1), 'xenhost'))[0]!;
        expect(night).to.include({ machine: 'xenhost', night: nightId(1), status: 'GOOD', xenTree: 'sha256:abc', xenBuildId: 'id-sha256:abc', xenVersion: '4.19-unstable', kernel: '6.1.0' });
        expect(await t.query('SELECT name, status, duration_ms FROM steps ORDER BY seq')).to.deep.equal([
          { name: 'fetch', status: 'GOOD', duration_ms: driver.name === 'sqlite' ? 1200 : '1200' },
          { name: 'reboot', status: 'GOOD', duration_ms: driver.name === 'sqlite' ? 45000 : '45000' },
        ]);
        expect(await t.query('SELECT name, status, reason FROM domains ORDER BY seq')).to.deep.equal([
          { name: 'dom0', status: 'GOOD', reason: 'finished' },
          { name: 'vm1', status: 'ABORT', reason: 'did not finish' },
        ]);
        const tests = await t.query('SELECT domain, name, status, subdir, kernel_base, kernel_hash, started, finished, passed, result FROM tests ORDER BY seq');
        expect(tests.map((x) => [x.domain, x.name, x.status, x.subdir, x.passed, x.result])).to.deep.equal([
          ['dom0', 'SERVER_JOB', 'GOOD', '----', 1, 'pass'],
          ['dom0', 'sieve', 'GOOD', 'sieve', 1, 'pass'],
          ['vm1', 'settime', 'GOOD', 'settime', 1, 'pass'],
        ]);
        expect(tests[1]).to.include({ kernel_base: '6.1.0', kernel_hash: '0123456789abcdef0123456789abcdef', started: 1_767_232_800, finished: 1_767_232_810 });
        const kv = await t.query("SELECT iteration, kind, key, value, value_num FROM keyvals ORDER BY iteration, kind, key");
        expect(kv).to.deep.equal([
          { iteration: 0, kind: 'keyval', key: 'exit_status', value: '0', value_num: null },
          { iteration: 0, kind: 'keyval', key: 'privileged', value: 'yes', value_num: null },
          { iteration: 1, kind: 'attr', key: 'cpu', value: 'x86', value_num: null },
          { iteration: 1, kind: 'perf', key: 'primes', value: '9592', value_num: 9592 },
          { iteration: 1, kind: 'perf', key: 'seconds', value: '0.25', value_num: 0.25 },
          { iteration: 2, kind: 'perf', key: 'primes', value: '9592', value_num: 9592 },
          { iteration: 2, kind: 'perf', key: 'seconds', value: '0.5', value_num: 0.5 },
        ]);
        await db.close();
      });

      it('ingesting a night again replaces it: twice is once, and a changed night replaces the old one whole', async () => {
        const t = await fresh();
        const db = await t.open();
        const v1 = bigNight(1, 30, 'first parse', 3);
        await db.ingest(v1);
        const once = await contentOf(t, nightId(1));
        expect(await db.ingest(v1)).to.include({ replaced: true });
        expect(await contentOf(t, nightId(1))).to.deep.equal(once);
        expect(once).to.deep.equal({ nights: 1, domains: 3, tests: 90, keyvals: 360, reasons: ['first parse'] });

        // The night's files changed (a domain collected late): the new parse replaces every row.
        const v2 = bigNight(1, 20, 'second parse', 2);
        await db.ingest(v2);
        expect(await contentOf(t, nightId(1))).to.deep.equal({ nights: 1, domains: 2, tests: 40, keyvals: 160, reasons: ['second parse'] });
        expect((await t.query('SELECT COUNT(*) AS c FROM machines')).map((r) => Number(r.c))).to.deep.equal([1]);
        await db.close();
      });

      it('stores a NUL character in a reason or keyval as U+FFFD (PostgreSQL refuses NUL in text)', async () => {
        const t = await fresh();
        const db = await t.open();
        await db.ingest(nightRecord(1, { domains: { dom0: [{ name: 'nul', status: 'FAIL', reason: 'out\0put', keyval: { k: 'a\0b' } }] } }));
        expect(await t.query('SELECT reason FROM tests')).to.deep.equal([{ reason: 'out\uFFFDput' }]);
        expect(await t.query('SELECT value FROM keyvals')).to.deep.equal([{ value: 'a\uFFFDb' }]);
        await db.close();
      });

      it('keeps the same night id of two machines apart', async () => {
        const t = await fresh();
        const db = await t.open();
        await db.ingest(nightRecord(1, { machine: 'alpha', domains: { dom0: [['a', 'GOOD']] } }));
        await db.ingest(nightRecord(1, { machine: 'beta', domains: { dom0: [['b', 'FAIL']] } }));
        expect((await db.findNights(nightId(1))).map((n) => n.machine)).to.deep.equal(['alpha', 'beta']);
        await db.ingest(nightRecord(1, { machine: 'beta', domains: { dom0: [['b', 'GOOD']] } }));
        expect((await db.findNights(nightId(1))).map((n) => n.machine)).to.deep.equal(['alpha', 'beta']);
        expect(await t.query('SELECT name, status FROM tests ORDER BY name')).to.deep.equal([
          { name: 'a', status: 'GOOD' },
          { name: 'b', status: 'GOOD' },
        ]);
        await db.close();
      });

      it('refuses what it cannot hold (a domain twice, a start time that is no time), changing nothing', async () => {
        const t = await fresh();
        const db = await t.open();
        await db.ingest(nightRecord(1, { domains: { dom0: [['a', 'GOOD']] } }));
        const twice = nightRecord(1, { domains: { dom0: [['a', 'FAIL']] } });
        twice.domains.push({ ...twice.domains[0]! });
        let error: unknown;
        await db.ingest(twice).catch((e: unknown) => (error = e));
        expect(error).to.be.instanceOf(InvalidNightRecord);
        expect(String(error)).to.include('domain "dom0" is listed twice');
        const badTime = { ...nightRecord(1, { domains: {} }), started: 'yesterday' };
        error = undefined;
        await db.ingest(badTime).catch((e: unknown) => (error = e));
        expect(String(error)).to.include('its start time "yesterday" is not a date and time');
        expect(await t.query('SELECT name, status FROM tests')).to.deep.equal([{ name: 'a', status: 'GOOD' }]);
        await db.close();
      });

      it('rebuild replaces everything in one transaction; one that fails half-way changes nothing', async () => {
        const t = await fresh();
        const db = await t.open();
        await db.ingest(nightRecord(1, { machine: 'old', domains: { dom0: [['a', 'GOOD']] } }));
        function* failing(): Generator<NightRecord> {
          yield nightRecord(2, { domains: { dom0: [['b', 'GOOD']] } });
          throw new Error('disk went away');
        }
        let error: unknown;
        await db.rebuild(failing()).catch((e: unknown) => (error = e));
        expect(String(error)).to.include('disk went away');
        expect((await db.recentNights(10)).map((n) => [n.machine, n.night])).to.deep.equal([['old', nightId(1)]]);

        const seen: string[] = [];
        const r = await db.rebuild(
          [nightRecord(2, { domains: { dom0: [['b', 'GOOD']] } }), nightRecord(3, { domains: { dom0: [['b', 'FAIL']] } })],
          (x) => seen.push(x.night),
        );
        expect(r.map((x) => x.night)).to.deep.equal([nightId(2), nightId(3)]);
        expect(seen).to.deep.equal([nightId(2), nightId(3)]);
        expect((await db.recentNights(10)).map((n) => [n.machine, n.night])).to.deep.equal([
          ['xenhost', nightId(3)],
          ['xenhost', nightId(2)],
        ]);
        expect((await t.query('SELECT name FROM machines')).map((m) => m.name)).to.deep.equal(['xenhost']);
        await db.close();
      });
    });

    describe('history', () => {
      it("counts each night's tests by verdict, without TKO's job entries, newest first, up to the night asked for", async () => {
        const db = await (await fresh()).open();
        try {
          const tests = (n: number, fail: number): TestSpec[] => [
            ...Array.from({ length: n - fail }, (_, i): TestSpec => [`pass${i}`, 'GOOD']),
            ...Array.from({ length: fail }, (_, i): TestSpec => [`fail${i}`, 'FAIL']),
            ['na', 'TEST_NA'],
            ['SERVER_JOB', 'GOOD'],
            ['CLIENT_JOB.0', 'GOOD'],
          ];
          await db.ingest(nightRecord(1, { domains: { dom0: tests(3, 0), vm1: tests(2, 1) } }));
          await db.ingest(nightRecord(2, { domains: { dom0: tests(3, 2) } }));
          await db.ingest(nightRecord(3, { domains: {} }));
          await db.ingest(nightRecord(4, { machine: 'other', domains: { dom0: tests(5, 5) } }));
          const night3 = (await db.findNights(nightId(3), 'xenhost'))[0]!;
          const rows = await db.nightHistory(night3, 30);
          expect(rows.map((r) => [r.night, r.passed, r.failed, r.skipped])).to.deep.equal([
            [nightId(3), 0, 0, 0],
            [nightId(2), 1, 2, 1],
            [nightId(1), 4, 1, 2],
          ]);
          // Each test ran 10 s (START to END): the tests' time is summed over the domains.
          expect(rows.map((r) => r.testSeconds)).to.deep.equal([0, 40, 70]);
          expect(rows[0]).to.include({ status: 'GOOD', started: nightRecord(3, { domains: {} }).started });
          const night2 = (await db.findNights(nightId(2), 'xenhost'))[0]!;
          expect((await db.nightHistory(night2, 1)).map((r) => r.night)).to.deep.equal([nightId(2)]);
        } finally {
          await db.close();
        }
      });
    });

    describe('killed in the middle of an ingest', function () {
      this.timeout(180_000);

      it('keeps the night as it was before, whole and consistent, and the next ingest completes it', async () => {
        const t = await fresh();
        const db = await t.open();
        await db.ingest(bigNight(1, 50, 'before', 2));
        await db.ingest(bigNight(2, 50, 'other night', 2));
        await db.close();
        const before = await contentOf(t, nightId(1));
        const other = await contentOf(t, nightId(2));

        // 20,000 tests and 80,000 keyvals: it pauses, inside its transaction, after 30,000 rows.
        const big = bigNight(1, 2_000, 'after', 10);
        const { child, done } = ingestInChild(work, t.location, big, { XENTEST_DB_PAUSE_AFTER_ROWS: '30000' });
        let stderr = '';
        child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
        await waitFor('the ingest to pause', () => /paused after \d+ rows/.test(stderr));
        child.kill('SIGKILL');
        const end = await done;
        expect(end.signal).to.equal('SIGKILL');
        expect(end.stderr).to.not.include('ingested');

        if (driver.name === 'sqlite') expect(await t.query('PRAGMA integrity_check')).to.deep.equal([{ integrity_check: 'ok' }]);
        expect(await contentOf(t, nightId(1))).to.deep.equal(before);
        expect(await contentOf(t, nightId(2))).to.deep.equal(other);

        // The next ingest (a new process, as the next `xentest db ingest` would be) completes it.
        const again = ingestInChild(work, t.location, big);
        const r = await again.done;
        expect(r.code, r.stderr).to.equal(0);
        expect(await contentOf(t, nightId(1))).to.deep.equal({ nights: 1, domains: 10, tests: 20_000, keyvals: 80_000, reasons: ['after'] });
        expect(await contentOf(t, nightId(2))).to.deep.equal(other);
        if (driver.name === 'sqlite') expect(await t.query('PRAGMA integrity_check')).to.deep.equal([{ integrity_check: 'ok' }]);
      });

      it('killed at random moments, always holds either the old night or the new one, never a mix', async function () {
        const t = await fresh();
        const db = await t.open();
        await db.ingest(bigNight(1, 50, 'before', 2));
        await db.close();
        const before = await contentOf(t, nightId(1));
        const big = bigNight(1, 500, 'after', 10);
        const after = { nights: 1, domains: 10, tests: 5_000, keyvals: 20_000, reasons: ['after'] };

        // How long a whole ingest takes here, to kill within it.
        const t0 = Date.now();
        const timing = ingestInChild(work, t.location, bigNight(9, 500, 'timing', 10));
        let opened = 0;
        timing.child.stderr?.on('data', (d: Buffer) => {
          if (d.toString().includes('opened') && !opened) opened = Date.now();
        });
        expect((await timing.done).code).to.equal(0);
        const ingestMs = Math.max(20, Date.now() - (opened || t0));

        const outcomes: string[] = [];
        for (let round = 0; round < 6; round++) {
          const { child, done } = ingestInChild(work, t.location, big);
          let stderr = '';
          child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
          await waitFor('the database to open', () => stderr.includes('opened') || child.exitCode !== null);
          await new Promise((r) => setTimeout(r, Math.floor(Math.random() * ingestMs)));
          child.kill('SIGKILL');
          const end = await done;
          const now = await contentOf(t, nightId(1));
          if (driver.name === 'sqlite') expect(await t.query('PRAGMA integrity_check')).to.deep.equal([{ integrity_check: 'ok' }]);
          if (end.stderr.includes('ingested')) {
            expect(now).to.deep.equal(after);
            outcomes.push('completed');
          } else {
            expect([before, after], `round ${round}`).to.deep.include(now);
            outcomes.push(JSON.stringify(now) === JSON.stringify(before) ? 'old' : 'new (committed just before the kill)');
          }
          // Back to the old night for the next round.
          const reset = await t.open();
          await reset.ingest(bigNight(1, 50, 'before', 2));
          await reset.close();
        }
        expect(outcomes.length).to.equal(6);
        // Most kills land inside the transaction; report what happened, for the record.
        this.test!.title += ` [${outcomes.join(', ')}]`;
      });

      it('two ingests at once, into a new database, both complete', async function () {
        const t = await fresh();
        const a = ingestInChild(work, t.location, bigNight(1, 300, 'a', 5));
        const b = ingestInChild(work, t.location, bigNight(2, 300, 'b', 5));
        const [ra, rb] = await Promise.all([a.done, b.done]);
        expect(ra.code, ra.stderr).to.equal(0);
        expect(rb.code, rb.stderr).to.equal(0);
        expect((await contentOf(t, nightId(1))).tests).to.equal(1_500);
        expect((await contentOf(t, nightId(2))).tests).to.equal(1_500);
        expect((await t.query('SELECT version FROM schema_version ORDER BY version')).map((r) => Number(r.version))).to.deep.equal(MIGRATIONS.map((m) => m.version));
      });
    });
  });
}
