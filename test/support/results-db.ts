/**
 * The results database's tests run once per driver: SQLite always (a real
 * file in a temporary directory), PostgreSQL when XENTEST_TEST_PG_URL names
 * a server where the test user may create databases (.ci/run starts one);
 * each test gets a database of its own. Plus NightRecords built by hand.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { JobStatus } from '../../shared/statuslog/entry.js';
import type { NightRecord, TestRecord } from '../../agent/results/record.js';
import { openResultsDb, resolveDbLocation } from '../../agent/results/db/open.js';
import type { ResultsDb, StoreHooks } from '../../agent/results/db/store.js';

export const PG_URL = process.env.XENTEST_TEST_PG_URL || undefined;

/** A fresh, empty database, and the means to look inside it. */
export interface TestDatabase {
  /** What --db or XENTEST_DB would be: the SQLite file or the postgres:// URL. */
  readonly location: string;
  open(options?: { hooks?: StoreHooks; upToVersion?: number }): Promise<ResultsDb>;
  /** A query straight on the database, bypassing xentest (`?` placeholders). */
  query(sql: string, params?: Array<string | number | null>): Promise<Array<Record<string, unknown>>>;
  dispose(): Promise<void>;
}

export interface Driver {
  readonly name: 'sqlite' | 'postgres';
  /** Why the driver's tests cannot run here, or null. */
  readonly unavailable: string | null;
  fresh(): Promise<TestDatabase>;
}

const sqlite: Driver = {
  name: 'sqlite',
  unavailable: null,
  async fresh(): Promise<TestDatabase> {
    const dir = mkdtempSync(join(tmpdir(), 'xentest-db-'));
    const file = join(dir, 'results.db');
    return {
      location: file,
      async open(options = {}) {
        if (options.upToVersion !== undefined) {
          const { openSqlite } = await import('../../agent/results/db/sqlite.js');
          return openSqlite(file, { create: true, upToVersion: options.upToVersion, ...(options.hooks ? { hooks: options.hooks } : {}) });
        }
        return openResultsDb(resolveDbLocation(file), { create: true, ...(options.hooks ? { hooks: options.hooks } : {}) });
      },
      async query(sql, params = []) {
        const db = new Database(file);
        try {
          const s = db.prepare(sql);
          return s.reader ? (s.all(...params) as Array<Record<string, unknown>>) : (s.run(...params), []);
        } finally {
          db.close();
        }
      },
      async dispose() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

async function pgAdmin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const postgres: Driver = {
  name: 'postgres',
  unavailable: PG_URL ? null : 'XENTEST_TEST_PG_URL is not set (.ci/run starts a PostgreSQL server and sets it)',
  async fresh(): Promise<TestDatabase> {
    const name = `xentest_test_${process.pid}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
    await pgAdmin((c) => c.query(`CREATE DATABASE ${name}`));
    const url = withDatabase(PG_URL as string, name);
    return {
      location: url,
      async open(options = {}) {
        if (options.upToVersion !== undefined) {
          const { openPostgres } = await import('../../agent/results/db/postgres.js');
          return openPostgres(url, { upToVersion: options.upToVersion, ...(options.hooks ? { hooks: options.hooks } : {}) });
        }
        return openResultsDb(resolveDbLocation(url), options.hooks ? { hooks: options.hooks } : {});
      },
      async query(sql, params = []) {
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        try {
          let n = 0;
          return (await c.query(sql.replace(/\?/g, () => `$${++n}`), params)).rows as Array<Record<string, unknown>>;
        } finally {
          await c.end();
        }
      },
      async dispose() {
        await pgAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
      },
    };
  },
};

export const DRIVERS: readonly Driver[] = [sqlite, postgres];

/**
 * Registers a driver's suite: its tests run with `fresh` giving a new
 * database each; without the driver (no PostgreSQL here) they are listed as
 * pending, with the reason in the suite's title.
 */
export function describeDriver(driver: Driver, title: string, body: (ctx: { fresh: () => Promise<TestDatabase> }) => void): void {
  const suffix = driver.unavailable ? ` (pending: ${driver.unavailable})` : '';
  describe(`${title} [${driver.name}]${suffix}`, function () {
    const opened: TestDatabase[] = [];
    before(function () {
      if (driver.unavailable) this.skip();
    });
    afterEach(async () => {
      for (const d of opened.splice(0)) await d.dispose();
    });
    body({
      fresh: async () => {
        const d = await driver.fresh();
        opened.push(d);
        return d;
      },
    });
  });
}

// ---------------------------------------------------------------------------
// Nights by hand.

/** Night number `day` (1, 2, ...): 2026-01-<day> 02:00 UTC, id 202601ddT020000Z. */
export function nightId(day: number): string {
  return startedAt(day).replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

export function startedAt(day: number): string {
  return new Date(Date.UTC(2026, 0, 1, 2, 0, 0) + (day - 1) * 86_400_000).toISOString();
}

/** A test: [name, status] or [name, status, reason], or a whole TestRecord's fields. */
export type TestSpec = [string, JobStatus] | [string, JobStatus, string] | (Partial<TestRecord> & { name: string; status: JobStatus });

export function testRecord(spec: TestSpec): TestRecord {
  const s = Array.isArray(spec) ? { name: spec[0], status: spec[1], ...(spec[2] !== undefined ? { reason: spec[2] } : {}) } : spec;
  return {
    reason: s.status === 'GOOD' ? 'completed successfully' : `${s.status.toLowerCase()}ed`,
    subdir: s.name,
    kernel: { base: '6.1.0', patches: [], hash: '0123456789abcdef0123456789abcdef' },
    started: 1_767_232_800,
    finished: 1_767_232_810,
    keyval: {},
    iterations: [],
    ...s,
  };
}

export interface NightSpec {
  machine?: string;
  /** The build: a string is the Xen tree identity (default: one of its own per night). */
  build?: string | null;
  domains: Record<string, TestSpec[]>;
}

export function nightRecord(day: number, spec: NightSpec): NightRecord {
  const night = nightId(day);
  const xenTree = spec.build === undefined ? `sha256:build-of-night-${day}` : spec.build;
  return {
    machine: spec.machine ?? 'xenhost',
    night,
    dir: `/var/lib/xentest/nights/${night}`,
    started: startedAt(day),
    finished: new Date(Date.parse(startedAt(day)) + 3_600_000).toISOString(),
    status: 'GOOD',
    reason: '',
    build: { xenTree, linuxTree: null, xenVersion: '4.19-unstable', xenBuildId: xenTree ? `id-${xenTree}` : null, kernel: '6.1.0' },
    steps: [
      { name: 'fetch', status: 'GOOD', reason: '', started: startedAt(day), finished: startedAt(day), durationMs: 1200 },
      { name: 'reboot', status: 'GOOD', reason: '', started: startedAt(day), finished: startedAt(day), durationMs: 45_000 },
    ],
    domains: Object.entries(spec.domains).map(([name, tests]) => ({ name, status: 'GOOD', reason: 'finished', tests: tests.map(testRecord) })),
  };
}
