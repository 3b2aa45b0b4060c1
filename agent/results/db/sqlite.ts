/**
 * The results database in one SQLite file (better-sqlite3): the default,
 * nothing to set up.
 *
 * WAL mode, so that `xentest compare` reads while a night is ingested, and
 * synchronous=FULL, so that a committed ingest survives a power cut (in WAL
 * mode NORMAL could lose the last commits). An interrupted transaction
 * leaves nothing behind: SQLite rolls it back when the file is next opened.
 */
import Database from 'better-sqlite3';
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { Serial, type Connection, type Row, type SqlValue } from './connection.js';
import { ResultsDbError } from './errors.js';
import { migrate, SqlResultsDb, type StoreHooks } from './store.js';

/** How long a writer waits for another one (an ingest, a rebuild) to finish. */
const BUSY_TIMEOUT_MS = 30_000;

class SqliteConnection implements Connection {
  readonly dialect = 'sqlite' as const;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly serial = new Serial();

  constructor(
    private readonly db: Database.Database,
    private readonly file: string,
  ) {}

  private statement(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<void> {
    this.guard(() => {
      const s = this.statement(sql);
      if (s.reader) s.all(...params);
      else s.run(...params);
    });
  }

  async all<T extends Row = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return this.guard(() => this.statement(sql).all(...params) as T[]);
  }

  async insertRows(
    table: string,
    columns: readonly string[],
    rows: readonly SqlValue[][],
    afterRows?: (n: number) => Promise<void>,
  ): Promise<void> {
    if (rows.length === 0) return;
    const s = this.statement(`INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`);
    // One prepared statement, a row at a time: inside a transaction that is
    // SQLite's fastest way in.
    let n = 0;
    for (const r of rows) {
      this.guard(() => s.run(...r));
      n++;
      if (afterRows) await afterRows(n);
    }
  }

  transaction<T>(fn: () => Promise<T>): Promise<T> {
    return this.serial.run(async () => {
      // IMMEDIATE takes the write lock now, so two writers wait for each
      // other (busy_timeout) instead of one failing at its first write.
      this.guard(() => this.db.exec('BEGIN IMMEDIATE'));
      try {
        const result = await fn();
        this.guard(() => this.db.exec('COMMIT'));
        return result;
      } catch (e) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw e;
      }
    });
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  /** Turns what a user can cause or fix (not a database, locked, read-only, disk full) into a ResultsDbError. */
  guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw translateSqliteError(e, this.file);
    }
  }
}

function translateSqliteError(e: unknown, file: string): unknown {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return e;
  const message = (e as Error).message;
  // Extended codes (SQLITE_IOERR_WRITE, SQLITE_BUSY_SNAPSHOT) by their primary code.
  switch (code.split('_').slice(0, 2).join('_')) {
    case 'SQLITE_NOTADB':
    case 'SQLITE_CORRUPT':
      return new ResultsDbError(`${file} is not a usable SQLite database (${message})`, 'point --db at the results database, or remove this file and run "xentest db rebuild STATE_DIR"');
    case 'SQLITE_BUSY':
    case 'SQLITE_LOCKED':
      return new ResultsDbError(`${file} is busy: another xentest has been writing to it for ${BUSY_TIMEOUT_MS / 1000} s`, 'try again when it has finished');
    case 'SQLITE_READONLY':
    case 'SQLITE_CANTOPEN':
    case 'SQLITE_PERM':
    case 'SQLITE_AUTH':
      return new ResultsDbError(`cannot write ${file} (${message})`, 'run as a user who may write it and its directory, or choose another file with --db');
    case 'SQLITE_FULL':
    case 'SQLITE_IOERR':
      return new ResultsDbError(`cannot write ${file} (${message})`, 'check the disk it is on');
    default:
      return e;
  }
}

export interface SqliteOptions {
  /** Create the file if it does not exist (ingest, rebuild); else a missing file is an error (compare). */
  create: boolean;
  hooks?: StoreHooks;
  /** Stop at this schema version (the migration tests make old databases with it). */
  upToVersion?: number;
}

export async function openSqlite(file: string, options: SqliteOptions): Promise<SqlResultsDb> {
  if (!existsSync(file)) {
    if (!options.create) {
      throw new ResultsDbError(`there is no results database at ${file}`, 'make it from the nights\' files with "xentest db rebuild STATE_DIR", or point --db (or XENTEST_DB) at it');
    }
    if (!existsSync(dirname(file)) || !statSync(dirname(file)).isDirectory()) {
      throw new ResultsDbError(`cannot create the results database ${file}: directory ${dirname(file)} does not exist`, 'create the directory, or choose another file with --db');
    }
  } else if (statSync(file).isDirectory()) {
    throw new ResultsDbError(`${file} is a directory, not a results database`, 'give the database file with --db, e.g. STATE_DIR/results.db');
  }
  let db: Database.Database;
  try {
    db = new Database(file);
  } catch (e) {
    throw translateSqliteError(e, file);
  }
  const conn = new SqliteConnection(db, file);
  try {
    conn.guard(() => {
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
    });
    await migrate(conn, options.upToVersion);
  } catch (e) {
    db.close();
    throw e;
  }
  return new SqlResultsDb(conn, file, options.hooks);
}
