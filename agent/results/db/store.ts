/**
 * The results database: nights go in (ingest, rebuild), and come out as the
 * facts a comparison needs. One implementation over a small Connection
 * (connection.ts), which sqlite.ts and postgres.ts provide, so that both
 * databases run the same SQL and the same rules.
 *
 * Ingesting a night is one transaction that first deletes whatever the
 * database holds of that night, then inserts it: re-ingesting replaces (as
 * TKO does when it re-parses a job), and a process killed in the middle
 * leaves the database as it was before, for the next ingest to complete.
 */
import { statusRank, type JobStatus } from '../../../shared/statuslog/entry.js';
import { verdictOf, type Verdict } from '../compare.js';
import type { NightRecord, TestRecord } from '../record.js';
import type { Connection, Row, SqlValue } from './connection.js';
import { ResultsDbError } from './errors.js';
import { buildKey, LATEST_VERSION, MIGRATIONS, nightOfOrd, nightOrd, renderSql, SCHEMA_VERSION_TABLE, type Dialect } from './schema.js';

/** A night's files say something the database cannot hold (a start time that is not a time, a domain twice). */
export class InvalidNightRecord extends Error {
  override readonly name = 'InvalidNightRecord';
}

export interface NightRow {
  id: number;
  machine: string;
  machineId: number;
  night: string;
  ord: string;
  dir: string;
  started: string;
  finished: string | null;
  status: string | null;
  reason: string;
  xenTree: string | null;
  linuxTree: string | null;
  xenVersion: string | null;
  xenBuildId: string | null;
  kernel: string | null;
  buildKey: string | null;
}

export interface IngestResult {
  machine: string;
  night: string;
  domains: number;
  tests: number;
  /** The database held this night already; it was replaced. */
  replaced: boolean;
}

/** One test (a domain and a test name) of the night being compared, and what its history says. */
export interface TestFacts {
  domain: string;
  name: string;
  /** The verdict of this night's runs: pass, fail, mixed (some runs passed, some failed), skip. */
  result: Verdict | 'mixed';
  /** The worst run's status and reason. */
  status: string;
  reason: string;
  runs: number;
  /** The night it is compared with (null: none has it), its verdict and status there. */
  refNight: string | null;
  refResult: Verdict | 'mixed' | null;
  refStatus: string | null;
  /** The last night, up to the reference night, in which it passed. */
  lastPassNight: string | null;
  /** For a test failing in the reference night: the first failing night since its last pass (or since it was first seen). */
  failingSinceNight: string | null;
  /** A domain of this night in which the same test passed (only looked for when it fails here). */
  passedInDomain: string | null;
  /** Another night of this machine, on the same build, in which this domain passed it (only looked for when it fails here). */
  passedOnRerunNight: string | null;
}

export interface GoneTest {
  domain: string;
  name: string;
  /** The night it was last in, and its status there. */
  night: string;
  status: string;
  /** How the domain ended in the night compared (a domain that did not start runs no tests); null: not in that night at all. */
  domainStatus: string | null;
}

/** A night of a machine's history, as the report's charts draw it. */
export interface NightHistoryRow {
  night: string;
  started: string;
  finished: string | null;
  status: string | null;
  /** Its tests (SERVER_JOB and CLIENT_JOB.<n>, the job-level entries, left out) by verdict. */
  passed: number;
  failed: number;
  skipped: number;
  /** The tests' own time, from their START and END lines, summed over every domain. */
  testSeconds: number;
}

export interface CompareFacts {
  tests: TestFacts[];
  gone: GoneTest[];
  /** The night whose tests are checked for "gone": the base, or the machine's previous night. */
  goneRef: NightRow | null;
}

export interface ResultsDb {
  readonly dialect: Dialect;
  /** Where the database is, for messages: a path, or the URL without its password. */
  readonly location: string;
  schemaVersion(): Promise<number>;
  ingest(night: NightRecord): Promise<IngestResult>;
  /** Replaces the whole database's content with these nights, in one transaction. */
  rebuild(nights: Iterable<NightRecord>, onIngested?: (r: IngestResult) => void): Promise<IngestResult[]>;
  /** The nights with this id (one per machine that has it), or only the given machine's. */
  findNights(night: string, machine?: string): Promise<NightRow[]>;
  newestNight(machine?: string): Promise<NightRow | undefined>;
  /** The machine's nights, newest first. */
  recentNights(limit: number, machine?: string): Promise<NightRow[]>;
  previousNight(of: NightRow): Promise<NightRow | undefined>;
  /** The machine's nights up to and including `upTo`, newest first, at most `limit`, with their tests counted. */
  nightHistory(upTo: NightRow, limit: number): Promise<NightHistoryRow[]>;
  /**
   * Every test of `night` with its history on the same machine and domain:
   * compared with `base` when given, else each with the last earlier night
   * that ran it. A handful of set-based queries, whatever the number of tests.
   */
  compareFacts(night: NightRow, base: NightRow | null): Promise<CompareFacts>;
  close(): Promise<void>;
}

export interface StoreHooks {
  /** Called as an ingest inserts rows, with the number inserted so far (the crash tests pause there). */
  afterRows?: (n: number) => Promise<void>;
}

/**
 * Brings a database to the latest schema (or to `upTo`). An up-to-date
 * database is only read, so that opening one for `compare` never waits for
 * a writer; otherwise the missing migrations are applied in one transaction
 * that the other writers wait for, after looking again at the version
 * inside it (another process may have just migrated).
 */
export async function migrate(conn: Connection, upTo: number = LATEST_VERSION): Promise<number> {
  const seen = await versionIfAny(conn);
  tooNew(seen ?? 0);
  if (seen !== null && seen >= upTo) return seen;
  return conn.transaction(async () => {
    await conn.run(SCHEMA_VERSION_TABLE);
    const version = await currentVersion(conn);
    tooNew(version);
    for (const m of MIGRATIONS) {
      if (m.version <= version || m.version > upTo) continue;
      for (const statement of m.statements) await conn.run(renderSql(statement, conn.dialect));
      await conn.run('INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)', [
        m.version,
        m.description,
        new Date().toISOString(),
      ]);
    }
    return currentVersion(conn);
  });
}

function tooNew(version: number): void {
  if (version > LATEST_VERSION) {
    throw new ResultsDbError(
      `the results database is at schema version ${version}, newer than this xentest knows (${LATEST_VERSION})`,
      'use the xentest that wrote it, or rebuild a database of your own from the files with "xentest db rebuild"',
    );
  }
}

async function currentVersion(conn: Connection): Promise<number> {
  const rows = await conn.all<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_version');
  return Number(rows[0]?.v ?? 0);
}

/** The schema version, or null for a database without a schema_version table (a new one). */
async function versionIfAny(conn: Connection): Promise<number | null> {
  try {
    return await currentVersion(conn);
  } catch (e) {
    // A database that cannot be used at all says so; anything else here is the missing table.
    if (e instanceof ResultsDbError) throw e;
    return null;
  }
}

const NIGHT_COLUMNS = `n.id, m.name AS machine, n.machine_id, n.night, n.ord, n.dir, n.started, n.finished, n.status, n.reason,
  n.xen_tree, n.linux_tree, n.xen_version, n.xen_build_id, n.kernel, n.build_key`;

function toNightRow(r: Row): NightRow {
  const s = (v: SqlValue): string | null => (v === null ? null : String(v));
  return {
    id: Number(r.id),
    machine: String(r.machine),
    machineId: Number(r.machine_id),
    night: String(r.night),
    ord: String(r.ord),
    dir: String(r.dir),
    started: String(r.started),
    finished: s(r.finished ?? null),
    status: s(r.status ?? null),
    reason: String(r.reason ?? ''),
    xenTree: s(r.xen_tree ?? null),
    linuxTree: s(r.linux_tree ?? null),
    xenVersion: s(r.xen_version ?? null),
    xenBuildId: s(r.xen_build_id ?? null),
    kernel: s(r.kernel ?? null),
    buildKey: s(r.build_key ?? null),
  };
}

function startedMs(record: NightRecord): number {
  const ms = Date.parse(record.started);
  if (!Number.isFinite(ms) || ms < 0) {
    throw new InvalidNightRecord(`night ${record.night}: its start time ${JSON.stringify(record.started)} is not a date and time`);
  }
  return ms;
}

/** Throws InvalidNightRecord for what the database cannot hold. */
export function checkNightRecord(record: NightRecord): void {
  if (!record.machine) throw new InvalidNightRecord(`night ${record.night}: the machine it ran on is not known`);
  if (!record.night) throw new InvalidNightRecord('a night without an id');
  startedMs(record);
  const seen = new Set<string>();
  for (const d of record.domains) {
    if (seen.has(d.name)) throw new InvalidNightRecord(`night ${record.night}: domain ${JSON.stringify(d.name)} is listed twice`);
    seen.add(d.name);
  }
}

/** The verdict of all the runs of one test in one domain of a night. */
function groupVerdict(verdicts: readonly Verdict[]): Verdict | 'mixed' {
  const ran = verdicts.filter((v) => v !== 'skip');
  if (ran.length === 0) return 'skip';
  if (ran.every((v) => v === 'pass')) return 'pass';
  if (ran.every((v) => v === 'fail')) return 'fail';
  return 'mixed';
}

function keyvalRows(nightId: number, seq: number, t: TestRecord): SqlValue[][] {
  const rows: SqlValue[][] = [];
  for (const [k, v] of Object.entries(t.keyval)) rows.push([nightId, seq, 0, 'keyval', k, v, null]);
  t.iterations.forEach((it, i) => {
    for (const [k, v] of Object.entries(it.attr)) rows.push([nightId, seq, i + 1, 'attr', k, v, null]);
    // NaN and the infinities are kept as text; SQL has no portable spelling for them.
    for (const [k, v] of Object.entries(it.perf)) rows.push([nightId, seq, i + 1, 'perf', k, String(v), Number.isFinite(v) ? v : null]);
  });
  return rows;
}

/**
 * PostgreSQL refuses a NUL character in text, and a test's reason or
 * keyval can carry one from a program's output: both databases store it as
 * U+FFFD, so that they hold the same and an ingest never fails on it.
 */
function withoutNul(row: SqlValue[]): SqlValue[] {
  return row.some((v) => typeof v === 'string' && v.includes('\0'))
    ? row.map((v) => (typeof v === 'string' ? v.replaceAll('\0', '\uFFFD') : v))
    : row;
}

export class SqlResultsDb implements ResultsDb {
  readonly dialect: Dialect;

  constructor(
    private readonly conn: Connection,
    readonly location: string,
    private readonly hooks: StoreHooks = {},
  ) {
    this.dialect = conn.dialect;
  }

  async schemaVersion(): Promise<number> {
    return currentVersion(this.conn);
  }

  async ingest(night: NightRecord): Promise<IngestResult> {
    return this.conn.transaction(() => this.replaceNight(night, { rows: 0 }));
  }

  async rebuild(nights: Iterable<NightRecord>, onIngested?: (r: IngestResult) => void): Promise<IngestResult[]> {
    const done = await this.conn.transaction(async () => {
      for (const table of ['keyvals', 'tests', 'domains', 'steps', 'nights', 'machines']) await this.conn.run(`DELETE FROM ${table}`);
      const done: IngestResult[] = [];
      const counter = { rows: 0 };
      for (const night of nights) {
        const r = await this.replaceNight(night, counter);
        done.push(r);
        onIngested?.(r);
      }
      return done;
    });
    // PostgreSQL plans the compare query from the tables' statistics, which
    // a bulk load leaves stale until autovacuum comes by: with none, it
    // took over a second on 1,000 nights instead of a tenth. SQLite's
    // planner does as well without them.
    if (this.dialect === 'postgres') await this.conn.run('ANALYZE');
    return done;
  }

  /** The body of an ingest; runs inside a transaction. */
  private async replaceNight(record: NightRecord, counter: { rows: number }): Promise<IngestResult> {
    checkNightRecord(record);
    const ord = nightOrd(startedMs(record), record.night);

    const c = this.conn;
    await c.run('INSERT INTO machines (name) VALUES (?) ON CONFLICT (name) DO NOTHING', [record.machine]);
    const machineId = Number((await c.all('SELECT id FROM machines WHERE name = ?', [record.machine]))[0]?.id);
    const old = await c.all('SELECT id FROM nights WHERE machine_id = ? AND night = ?', [machineId, record.night]);
    for (const o of old) {
      // Children first: the foreign keys are enforced.
      for (const table of ['keyvals', 'tests', 'domains', 'steps']) await c.run(`DELETE FROM ${table} WHERE night_id = ?`, [Number(o.id)]);
      await c.run('DELETE FROM nights WHERE id = ?', [Number(o.id)]);
    }

    const b = record.build;
    const inserted = await c.all(
      `INSERT INTO nights (machine_id, night, ord, dir, started, finished, status, reason,
         xen_tree, linux_tree, xen_version, xen_build_id, kernel, build_key, ingested_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
      [
        machineId, record.night, ord, record.dir, record.started, record.finished, record.status, record.reason,
        b.xenTree, b.linuxTree, b.xenVersion, b.xenBuildId, b.kernel, buildKey(b), new Date().toISOString(),
      ],
    );
    const nightId = Number(inserted[0]?.id);

    const afterRows = this.hooks.afterRows;
    const progress = afterRows
      ? async (n: number): Promise<void> => {
          await afterRows(counter.rows + n);
        }
      : undefined;
    const insert = async (table: string, columns: string[], rows: SqlValue[][]): Promise<void> => {
      await c.insertRows(table, columns, rows.map(withoutNul), progress);
      counter.rows += rows.length;
    };

    await insert(
      'steps',
      ['night_id', 'seq', 'name', 'status', 'reason', 'started', 'finished', 'duration_ms'],
      record.steps.map((s, i) => [nightId, i, s.name, s.status, s.reason, s.started, s.finished, s.durationMs]),
    );
    await insert(
      'domains',
      ['night_id', 'name', 'seq', 'status', 'reason'],
      record.domains.map((d, i) => [nightId, d.name, i, d.status, d.reason]),
    );

    const testRows: SqlValue[][] = [];
    const kvRows: SqlValue[][] = [];
    let seq = 0;
    for (const d of record.domains) {
      const byName = new Map<string, Verdict[]>();
      for (const t of d.tests) byName.set(t.name, [...(byName.get(t.name) ?? []), verdictOf(t.status)]);
      for (const t of d.tests) {
        const verdict = verdictOf(t.status);
        const passed = verdict === 'skip' ? null : verdict === 'pass' ? 1 : 0;
        testRows.push([
          nightId, seq, machineId, d.name, ord, t.name, t.status, t.reason, t.subdir, t.kernel.base, t.kernel.hash,
          t.started, t.finished, passed, groupVerdict(byName.get(t.name) ?? []), t.keyval.source_identity ?? null,
        ]);
        kvRows.push(...keyvalRows(nightId, seq, t));
        seq++;
      }
    }
    await insert(
      'tests',
      ['night_id', 'seq', 'machine_id', 'domain', 'ord', 'name', 'status', 'reason', 'subdir', 'kernel_base', 'kernel_hash',
        'started', 'finished', 'passed', 'result', 'source'],
      testRows,
    );
    await insert('keyvals', ['night_id', 'test_seq', 'iteration', 'kind', 'key', 'value', 'value_num'], kvRows);
    return { machine: record.machine, night: record.night, domains: record.domains.length, tests: testRows.length, replaced: old.length > 0 };
  }

  async findNights(night: string, machine?: string): Promise<NightRow[]> {
    const rows = await this.conn.all(
      `SELECT ${NIGHT_COLUMNS} FROM nights n JOIN machines m ON m.id = n.machine_id
       WHERE n.night = ?${machine === undefined ? '' : ' AND m.name = ?'} ORDER BY m.name`,
      machine === undefined ? [night] : [night, machine],
    );
    return rows.map(toNightRow);
  }

  async newestNight(machine?: string): Promise<NightRow | undefined> {
    return (await this.recentNights(1, machine))[0];
  }

  async recentNights(limit: number, machine?: string): Promise<NightRow[]> {
    const rows = await this.conn.all(
      `SELECT ${NIGHT_COLUMNS} FROM nights n JOIN machines m ON m.id = n.machine_id
       ${machine === undefined ? '' : 'WHERE m.name = ?'} ORDER BY n.ord DESC, m.name LIMIT ?`,
      machine === undefined ? [limit] : [machine, limit],
    );
    return rows.map(toNightRow);
  }

  async previousNight(of: NightRow): Promise<NightRow | undefined> {
    const rows = await this.conn.all(
      `SELECT ${NIGHT_COLUMNS} FROM nights n JOIN machines m ON m.id = n.machine_id
       WHERE n.machine_id = ? AND n.ord < ? ORDER BY n.ord DESC LIMIT 1`,
      [of.machineId, of.ord],
    );
    return rows.map(toNightRow)[0];
  }

  async nightHistory(upTo: NightRow, limit: number): Promise<NightHistoryRow[]> {
    // The nights first (one range of nights_by_machine_ord), then their tests
    // by primary key: the cost is the tests of those nights only.
    const rows = await this.conn.all(
      `SELECT n.night, n.started, n.finished, n.status, n.ord,
         SUM(CASE WHEN t.passed = 1 THEN 1 ELSE 0 END) AS passed,
         SUM(CASE WHEN t.passed = 0 THEN 1 ELSE 0 END) AS failed,
         SUM(CASE WHEN t.seq IS NOT NULL AND t.passed IS NULL THEN 1 ELSE 0 END) AS skipped,
         SUM(CASE WHEN t.finished >= t.started THEN t.finished - t.started ELSE 0 END) AS test_seconds
       FROM (SELECT id, night, started, finished, status, ord FROM nights
             WHERE machine_id = ? AND ord <= ? ORDER BY ord DESC LIMIT ?) n
       LEFT JOIN tests t ON t.night_id = n.id AND t.name <> 'SERVER_JOB' AND t.name NOT LIKE 'CLIENT!_JOB.%' ESCAPE '!'
       GROUP BY n.id, n.night, n.started, n.finished, n.status, n.ord
       ORDER BY n.ord DESC`,
      [upTo.machineId, upTo.ord, limit],
    );
    // PostgreSQL's SUM of integers is a bigint, which the driver gives as a string.
    return rows.map((r) => ({
      night: String(r.night),
      started: String(r.started),
      finished: r.finished === null || r.finished === undefined ? null : String(r.finished),
      status: r.status === null || r.status === undefined ? null : String(r.status),
      passed: Number(r.passed ?? 0),
      failed: Number(r.failed ?? 0),
      skipped: Number(r.skipped ?? 0),
      testSeconds: Number(r.test_seconds ?? 0),
    }));
  }

  async compareFacts(night: NightRow, base: NightRow | null): Promise<CompareFacts> {
    const tests = await this.conn.all(compareSql(base !== null, night.buildKey !== null), compareParams(night, base));
    const runs = await this.conn.all(
      'SELECT domain, name, status, reason, passed FROM tests WHERE night_id = ? ORDER BY seq',
      [night.id],
    );
    const byTest = runsByTest(runs);
    const goneRef = base ?? (await this.previousNight(night)) ?? null;
    const gone = goneRef
      ? await this.conn.all(
          `SELECT g.domain, g.name, MIN(g.status) AS status FROM tests g
           WHERE g.night_id = ? AND NOT EXISTS (
             SELECT 1 FROM tests t WHERE t.night_id = ? AND t.name = g.name AND t.domain = g.domain)
           GROUP BY g.domain, g.name ORDER BY g.domain, MIN(g.seq)`,
          [goneRef.id, night.id],
        )
      : [];
    const domains = new Map(
      (await this.conn.all('SELECT name, status FROM domains WHERE night_id = ?', [night.id])).map((d) => [String(d.name), String(d.status)]),
    );
    return {
      tests: tests.map((r) => toTestFacts(r, byTest)),
      gone: gone.map((g) => ({
        domain: String(g.domain),
        name: String(g.name),
        night: goneRef?.night ?? '',
        status: String(g.status),
        domainStatus: domains.get(String(g.domain)) ?? null,
      })),
      goneRef,
    };
  }

  async close(): Promise<void> {
    await this.conn.close();
  }
}

/**
 * The compare query. For each test (domain, name) of the night, correlated
 * subqueries that are each one index seek (schema.ts, migration 2):
 *
 * - ref_ord: the night it is compared with. With a base night, the base (if
 *   the base ran it); else the latest earlier night on this machine that ran
 *   it in this domain (tests_history).
 * - ref_result, ref_status: its verdict and worst status there.
 * - last_pass_ord: the latest night up to ref_ord in which it passed
 *   (tests_last_pass).
 * - since_ord: when it fails in the reference night, the first night that
 *   ran it after its last pass (or ever, if it never passed).
 * - passed_in_domain, passed_on_rerun: only for a test failing tonight, the
 *   evidence of flakiness (tests_in_night; same_build by nights_by_build).
 *
 * Subqueries in a CASE are evaluated only when their branch is taken, in both
 * SQLite and PostgreSQL, so a passing test costs four seeks. The CTEs are
 * MATERIALIZED (both accept the word) because PostgreSQL would otherwise
 * inline them and evaluate ref_ord again for every subquery that uses it.
 */
function compareSql(withBase: boolean, withBuild: boolean): string {
  const same = 'h.machine_id = ? AND h.domain = r.domain AND h.name = r.name';
  const refOrd = withBase
    ? `(SELECT h.ord FROM tests h WHERE h.night_id = ? AND h.domain = c.domain AND h.name = c.name AND h.result <> 'skip' LIMIT 1)`
    : `(SELECT h.ord FROM tests h WHERE h.machine_id = ? AND h.domain = c.domain AND h.name = c.name
          AND h.ord < ? AND h.result <> 'skip' ORDER BY h.ord DESC LIMIT 1)`;
  const failing = `f.result IN ('fail', 'mixed')`;
  // The nights of the same build are few (retests): found once, then each
  // failing test is looked for in each of them. As a join inside the
  // subquery, the planner may walk the machine's nights by ord instead.
  const sameBuild = withBuild
    ? `same_build AS MATERIALIZED (
         SELECT n2.id, n2.ord FROM nights n2 WHERE n2.machine_id = ? AND n2.build_key = ? AND n2.id <> ?
       ),`
    : '';
  const rerun = withBuild
    ? `CASE WHEN ${failing} THEN (
         SELECT sb.ord FROM same_build sb
         WHERE EXISTS (SELECT 1 FROM tests o WHERE o.night_id = sb.id AND o.name = f.name AND o.domain = f.domain AND o.passed = 1
                         AND o.source IS NOT DISTINCT FROM f.source)
         ORDER BY sb.ord DESC LIMIT 1) END`
    : 'NULL';
  return `
    WITH ${sameBuild}
    cur AS (
      SELECT t.domain, t.name, MIN(t.seq) AS seq, MIN(t.result) AS result, MIN(t.source) AS source
      FROM tests t WHERE t.night_id = ? GROUP BY t.domain, t.name
    ),
    ref AS MATERIALIZED (
      SELECT c.domain, c.name, c.seq, c.result, c.source, ${refOrd} AS ref_ord FROM cur c
    ),
    facts AS MATERIALIZED (
      SELECT r.domain, r.name, r.seq, r.result, r.source, r.ref_ord,
        (SELECT h.result FROM tests h WHERE ${same} AND h.ord = r.ref_ord LIMIT 1) AS ref_result,
        (SELECT h.status FROM tests h WHERE ${same} AND h.ord = r.ref_ord
           ORDER BY CASE WHEN h.passed = 0 THEN 0 ELSE 1 END, h.seq LIMIT 1) AS ref_status,
        (SELECT h.ord FROM tests h WHERE ${same} AND h.result = 'pass' AND h.ord <= r.ref_ord
           ORDER BY h.ord DESC LIMIT 1) AS last_pass_ord
      FROM ref r
    )
    SELECT f.domain, f.name, f.result, f.ref_ord, f.ref_result, f.ref_status, f.last_pass_ord,
      CASE WHEN f.ref_result IN ('fail', 'mixed') THEN (
        SELECT h.ord FROM tests h WHERE h.machine_id = ? AND h.domain = f.domain AND h.name = f.name
          AND h.result <> 'skip' AND h.ord > COALESCE(f.last_pass_ord, '') AND h.ord <= f.ref_ord
        ORDER BY h.ord LIMIT 1) END AS since_ord,
      CASE WHEN ${failing} THEN (
        SELECT MIN(o.domain) FROM tests o WHERE o.night_id = ? AND o.name = f.name AND o.domain <> f.domain AND o.passed = 1
      ) END AS passed_in_domain,
      ${rerun} AS passed_on_rerun
    FROM facts f
    ORDER BY f.seq`;
}

/** The parameters of compareSql, in the order its placeholders appear. */
function compareParams(night: NightRow, base: NightRow | null): SqlValue[] {
  const m = night.machineId;
  const params: SqlValue[] = [];
  if (night.buildKey !== null) params.push(m, night.buildKey, night.id); // same_build
  params.push(night.id); // cur
  if (base) params.push(base.id);
  else params.push(m, night.ord);
  params.push(m, m, m); // ref_result, ref_status, last_pass_ord
  params.push(m); // since_ord
  params.push(night.id); // passed_in_domain
  return params;
}

/** A night's runs of each test (domain, name), in order. */
function runsByTest(runs: Row[]): Map<string, Row[]> {
  const by = new Map<string, Row[]>();
  for (const r of runs) {
    const key = `${String(r.domain)}\0${String(r.name)}`;
    const list = by.get(key);
    if (list) list.push(r);
    else by.set(key, [r]);
  }
  return by;
}

/** The run that speaks for a test: its worst failing run if any failed, else the first. */
function worstRun(runs: Row[]): Row | undefined {
  let worst: Row | undefined;
  for (const r of runs) {
    if (r.passed === null || Number(r.passed) !== 0) continue;
    if (!worst || statusRank(String(r.status) as JobStatus) < statusRank(String(worst.status) as JobStatus)) worst = r;
  }
  return worst ?? runs[0];
}

function toTestFacts(r: Row, runs: Map<string, Row[]>): TestFacts {
  const mine = runs.get(`${String(r.domain)}\0${String(r.name)}`) ?? [];
  const worst = worstRun(mine);
  const ord = (v: SqlValue | undefined): string | null => (v === null || v === undefined ? null : nightOfOrd(String(v)));
  return {
    domain: String(r.domain),
    name: String(r.name),
    result: String(r.result) as TestFacts['result'],
    status: String(worst?.status ?? ''),
    reason: String(worst?.reason ?? ''),
    runs: mine.length,
    refNight: ord(r.ref_ord),
    refResult: r.ref_result === null || r.ref_result === undefined ? null : (String(r.ref_result) as TestFacts['result']),
    refStatus: r.ref_status === null || r.ref_status === undefined ? null : String(r.ref_status),
    lastPassNight: ord(r.last_pass_ord),
    failingSinceNight: ord(r.since_ord),
    passedInDomain: r.passed_in_domain === null || r.passed_in_domain === undefined ? null : String(r.passed_in_domain),
    passedOnRerunNight: ord(r.passed_on_rerun),
  };
}
