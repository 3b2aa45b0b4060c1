/**
 * The results database on a PostgreSQL server (the pg driver), for a lab of
 * machines reporting to one place. Same schema and SQL as SQLite
 * (schema.ts, store.ts).
 *
 * One connection per ResultsDb: the commands are short-lived, and a
 * transaction has to stay on one connection anyway. Writers (ingest,
 * rebuild, migrations) from any number of machines take one advisory lock
 * for the length of their transaction, so two ingests of the same night
 * cannot both insert it; readers are never blocked.
 */
import type pg from 'pg';
import { numberPlaceholders, Serial, type Connection, type Row, type SqlValue } from './connection.js';
import { ResultsDbError } from './errors.js';
import { migrate, SqlResultsDb, type StoreHooks } from './store.js';

/** The advisory lock every xentest writer takes ("xent" in ASCII, as a number). */
const WRITE_LOCK = 0x78656e74;
const CONNECT_TIMEOUT_MS = 10_000;
/** PostgreSQL takes at most 65,535 parameters in a statement. */
const MAX_PARAMS = 60_000;
const MAX_ROWS_PER_INSERT = 1_000;

/** The URL as it may be printed: without its password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}

/** BIGINT (int8) columns as numbers: ours (durations in ms, counts) are far below 2^53. */
function int8AsNumber(types: typeof pg.types): { getTypeParser: typeof pg.types.getTypeParser } {
  return {
    getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
      oid === types.builtins.INT8 ? (v: string) => Number(v) : types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
  };
}

class PostgresConnection implements Connection {
  readonly dialect = 'postgres' as const;
  private readonly serial = new Serial();
  /** Set when the server closed the connection or it broke; every later query reports it. */
  private lost: Error | null = null;

  constructor(
    private readonly client: pg.Client,
    private readonly where: string,
  ) {
    client.on('error', (e) => {
      this.lost = e;
    });
  }

  private async query(sql: string, params: readonly SqlValue[]): Promise<pg.QueryResult> {
    if (this.lost) throw this.lostError(this.lost);
    try {
      return await this.client.query(numberPlaceholders(sql), params as SqlValue[]);
    } catch (e) {
      throw this.translate(e);
    }
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<void> {
    await this.query(sql, params);
  }

  async all<T extends Row = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return (await this.query(sql, params)).rows as T[];
  }

  async insertRows(
    table: string,
    columns: readonly string[],
    rows: readonly SqlValue[][],
    afterRows?: (n: number) => Promise<void>,
  ): Promise<void> {
    // Many rows per statement: a round trip per row would make a night of
    // a thousand tests take seconds on a remote server.
    const perInsert = Math.max(1, Math.min(MAX_ROWS_PER_INSERT, Math.floor(MAX_PARAMS / columns.length)));
    for (let i = 0; i < rows.length; i += perInsert) {
      const batch = rows.slice(i, i + perInsert);
      const tuple = `(${columns.map(() => '?').join(', ')})`;
      await this.query(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${batch.map(() => tuple).join(', ')}`, batch.flat());
      if (afterRows) await afterRows(i + batch.length);
    }
  }

  transaction<T>(fn: () => Promise<T>): Promise<T> {
    return this.serial.run(async () => {
      await this.query('BEGIN', []);
      try {
        await this.query('SELECT pg_advisory_xact_lock(?)', [WRITE_LOCK]);
        const result = await fn();
        await this.query('COMMIT', []);
        return result;
      } catch (e) {
        if (!this.lost) await this.client.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
    });
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }

  private lostError(e: unknown): ResultsDbError {
    return new ResultsDbError(`lost the connection to the results database ${this.where} (${(e as Error).message})`, 'check that the server is up, then run the command again');
  }

  /** Errors a user can fix (the server went away, no room left) become a ResultsDbError; SQL errors are bugs. */
  private translate(e: unknown): unknown {
    const code = (e as { code?: unknown } | null)?.code;
    if (typeof code !== 'string') {
      return /Connection terminated|ECONNRESET|EPIPE/.test((e as Error)?.message ?? '') ? this.lostError(e) : e;
    }
    // 57P01-03: the server is shutting down or restarting; 08xxx: connection exceptions.
    if (/^(57P0[123]|08)/.test(code) || /^E(CONNRESET|PIPE|CONNREFUSED)$/.test(code)) return this.lostError(e);
    if (/^53/.test(code)) return new ResultsDbError(`the results database ${this.where} is out of resources (${(e as Error).message})`, 'check the server (disk, connections)');
    if (code === '42501') return new ResultsDbError(`not allowed on the results database ${this.where}: ${(e as Error).message}`, 'give the user in the URL the rights to create tables in the database');
    return e;
  }
}

export interface PostgresOptions {
  hooks?: StoreHooks;
  /** Stop at this schema version (the migration tests make old databases with it). */
  upToVersion?: number;
}

export async function openPostgres(url: string, options: PostgresOptions = {}): Promise<SqlResultsDb> {
  const where = redactUrl(url);
  // The driver is loaded only here: a SQLite night never loads it.
  const { default: driver } = await import('pg');
  const client = new driver.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, types: int8AsNumber(driver.types) });
  // An error while connecting is reported by connect() below; this keeps it from also crashing the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => undefined);
    throw connectError(e, where);
  }
  const conn = new PostgresConnection(client, where);
  try {
    await conn.run("SET client_min_messages = 'warning'");
    await migrate(conn, options.upToVersion);
  } catch (e) {
    await conn.close();
    throw e;
  }
  return new SqlResultsDb(conn, where, options.hooks);
}

function connectError(e: unknown, where: string): ResultsDbError {
  const code = (e as { code?: unknown } | null)?.code;
  const message = (e as Error)?.message ?? String(e);
  if (code === '3D000') return new ResultsDbError(`cannot use the results database ${where}: ${message}`, 'create it first (createdb NAME), or fix the URL');
  if (code === '28P01' || code === '28000') return new ResultsDbError(`cannot log in to ${where}: ${message}`, 'check the user and password in the URL (or ~/.pgpass)');
  return new ResultsDbError(
    `cannot reach the results database ${where}: ${message || code || 'connection failed'}`,
    'check that PostgreSQL runs there and accepts connections (host, port, pg_hba.conf), or use a SQLite file with --db FILE',
  );
}
