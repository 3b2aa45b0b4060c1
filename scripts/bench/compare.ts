/**
 * Benchmark: `xentest compare` on a long history.
 *
 *   npm run build && npm run bench:compare [-- --nights N --tests N --runs N]
 *
 * Builds a results database of N nights (default 1,000) of one machine,
 * each with N tests (default 1,000: dom0 and three guests, 250 each), through
 * the same ingest code as `xentest db rebuild` (one transaction). The
 * history is deterministic (mulberry32) and looks like a real one: most tests
 * pass, 2% never pass, 1% fail now and then, a few break for good at some
 * night, and one night in ten retests the build of the night before.
 *
 * Then it times the compare (the queries and the classification, as the
 * command runs them) for the newest night, and for one more night in which
 * every test fails (the most work per test: every failure's evidence is
 * looked for). Median of --runs (default 5) each, against the bar of 1 s.
 *
 * SQLite always, in a temporary directory; PostgreSQL too when
 * XENTEST_TEST_PG_URL is set (a database is created there and dropped).
 * Exits 1 if a figure is over the bar.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { mulberry32 } from '../../shared/random/mulberry32.js';
import type { JobStatus } from '../../shared/statuslog/entry.js';
import { compareNight } from '../../agent/results/compare.js';
import { openResultsDb, resolveDbLocation } from '../../agent/results/db/open.js';
import type { ResultsDb } from '../../agent/results/db/store.js';
import type { NightRecord, TestRecord } from '../../agent/results/record.js';

const BAR_MS = 1_000;
const DOMAINS = ['dom0', 'vm1', 'vm2', 'vm3'];
const DAY_MS = 86_400_000;
const FIRST_NIGHT = Date.UTC(2023, 0, 1, 2, 0, 0);

const { values } = parseArgs({
  options: {
    nights: { type: 'string', default: '1000' },
    tests: { type: 'string', default: '1000' },
    runs: { type: 'string', default: '5' },
  },
});
const NIGHTS = Number(values.nights);
const TESTS = Number(values.tests);
const RUNS = Number(values.runs);
const PER_DOMAIN = Math.ceil(TESTS / DOMAINS.length);

function nightName(i: number): string {
  return new Date(FIRST_NIGHT + i * DAY_MS).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

type Behaviour = 'stable' | 'never' | 'flaky' | { breaksAt: number };

/** What each test does over the history, fixed by the seed. */
function behaviours(): Behaviour[] {
  const rnd = mulberry32(20_240_601);
  return Array.from({ length: PER_DOMAIN * DOMAINS.length }, (): Behaviour => {
    const r = rnd();
    if (r < 0.02) return 'never';
    if (r < 0.03) return 'flaky';
    if (r < 0.035) return { breaksAt: Math.floor(rnd() * NIGHTS) };
    return 'stable';
  });
}

function test(name: string, status: JobStatus, at: number): TestRecord {
  return {
    name,
    status,
    reason: status === 'GOOD' ? 'completed successfully' : 'run_command exited with status 1',
    subdir: name,
    kernel: { base: '6.1.0', patches: [], hash: 'e3b0c44298fc1c149afbf4c8996fb924' },
    started: at,
    finished: at + 10,
    keyval: {},
    iterations: [],
  };
}

function night(i: number, kinds: Behaviour[], allFail = false): NightRecord {
  const rnd = mulberry32(i + 1);
  const started = FIRST_NIGHT + i * DAY_MS;
  // One night in ten retests the build of the night before (an unchanged tree).
  const build = i % 10 === 9 ? i - 1 : i;
  return {
    machine: 'benchhost',
    night: nightName(i),
    dir: `/var/lib/xentest/nights/${nightName(i)}`,
    started: new Date(started).toISOString(),
    finished: new Date(started + 3_600_000).toISOString(),
    status: 'GOOD',
    reason: '',
    build: { xenTree: `sha256:build-${build}`, linuxTree: null, xenVersion: '4.19-unstable', xenBuildId: `id-${build}`, kernel: '6.1.0' },
    steps: [{ name: 'fetch', status: 'GOOD', reason: '', started: null, finished: null, durationMs: 1000 }],
    domains: DOMAINS.map((d, di) => ({
      name: d,
      status: 'GOOD' as JobStatus,
      reason: 'finished',
      tests: Array.from({ length: PER_DOMAIN }, (_, t) => {
        const k = kinds[di * PER_DOMAIN + t] as Behaviour;
        const fails =
          allFail ||
          k === 'never' ||
          (k === 'flaky' && rnd() < 0.3) ||
          (typeof k === 'object' && i >= k.breaksAt);
        return test(`test-${String(t).padStart(4, '0')}`, fails ? 'FAIL' : 'GOOD', Math.floor(started / 1000) + t);
      }),
    })),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

async function timeCompare(db: ResultsDb, nightId: string): Promise<{ ms: number; failing: number; counts: string }> {
  const times: number[] = [];
  let failing = 0;
  let counts = '';
  for (let r = 0; r < RUNS; r++) {
    const t0 = performance.now();
    const c = await compareNight(db, { night: nightId });
    times.push(performance.now() - t0);
    failing = c.tests.filter((t) => t.status !== 'GOOD').length;
    counts = Object.entries(c.counts)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${n} ${k}`)
      .join(', ');
  }
  return { ms: median(times), failing, counts };
}

async function bench(label: string, db: ResultsDb, size: () => Promise<string>): Promise<boolean> {
  const kinds = behaviours();
  const t0 = performance.now();
  let done = 0;
  function* history(): Generator<NightRecord> {
    for (let i = 0; i < NIGHTS; i++) {
      yield night(i, kinds);
      done++;
      if (process.stderr.isTTY && done % 50 === 0) process.stderr.write(`\r  ${label}: ${done}/${NIGHTS} nights`);
    }
  }
  await db.rebuild(history());
  if (process.stderr.isTTY) process.stderr.write('\r');
  const built = (performance.now() - t0) / 1000;
  await db.ingest(night(NIGHTS, kinds, true));
  const testRows = (NIGHTS + 1) * PER_DOMAIN * DOMAINS.length;
  process.stdout.write(
    `${label}: ${NIGHTS.toLocaleString('en')} nights x ${(PER_DOMAIN * DOMAINS.length).toLocaleString('en')} tests ` +
      `(+1 night with every test failing; ${testRows.toLocaleString('en')} test rows), built in ${built.toFixed(1)} s, ${await size()}\n`,
  );
  let ok = true;
  for (const [what, id] of [
    ['newest ordinary night', nightName(NIGHTS - 1)],
    ['a night with every test failing', nightName(NIGHTS)],
  ] as const) {
    const r = await timeCompare(db, id);
    const verdict = r.ms <= BAR_MS ? 'OK' : 'SLOW';
    ok &&= r.ms <= BAR_MS;
    process.stdout.write(`  compare ${what} (${r.failing} failing: ${r.counts}): median ${r.ms.toFixed(0)} ms of ${RUNS}  ${verdict} (bar ${BAR_MS} ms)\n`);
  }
  return ok;
}

async function sqlite(): Promise<boolean> {
  const dir = mkdtempSync(join(tmpdir(), 'xentest-bench-compare-'));
  const file = join(dir, 'results.db');
  const db = await openResultsDb(resolveDbLocation(file), { create: true });
  try {
    return await bench('SQLite', db, async () => {
      // The file as it is once the rebuild's write-ahead log is folded in.
      const raw = new Database(file);
      raw.pragma('wal_checkpoint(TRUNCATE)');
      raw.close();
      return `${(statSync(file).size / 2 ** 20).toFixed(0)} MiB`;
    });
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function postgres(url: string): Promise<boolean> {
  const name = `xentest_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name}`);
  await admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(url);
  u.pathname = `/${name}`;
  const db = await openResultsDb(resolveDbLocation(u.toString()));
  try {
    return await bench('PostgreSQL', db, async () => {
      const bytes = Number((await admin.query('SELECT pg_database_size($1) AS b', [name])).rows[0]?.b ?? 0);
      return `${(bytes / 2 ** 20).toFixed(0)} MiB`;
    });
  } finally {
    await db.close();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

let ok = await sqlite();
const pgUrl = process.env.XENTEST_TEST_PG_URL;
if (pgUrl) ok = (await postgres(pgUrl)) && ok;
else process.stdout.write('PostgreSQL: not measured (set XENTEST_TEST_PG_URL to a server where databases may be created)\n');
process.exitCode = ok ? 0 : 1;
