/**
 * Which results database a command uses, and opening it: `--db URL|FILE`,
 * else XENTEST_DB, else <state dir>/results.db. A postgres:// (or
 * postgresql://) URL is a PostgreSQL server; anything else is a SQLite file.
 */
import { join, resolve } from 'node:path';
import { machinePaths } from '../../machine.js';
import { BadDbLocation } from './errors.js';
import { openPostgres, redactUrl } from './postgres.js';
import { openSqlite } from './sqlite.js';
import type { ResultsDb, StoreHooks } from './store.js';

export type DbLocation = { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string };

export function resolveDbLocation(given: string | undefined, env: NodeJS.ProcessEnv = process.env): DbLocation {
  const value = given ?? (env.XENTEST_DB || undefined);
  if (value === undefined) return { kind: 'sqlite', file: join(machinePaths(env).stateDir, 'results.db') };
  if (value.trim() === '') throw new BadDbLocation('--db is empty', 'give a SQLite file or a postgres:// URL');
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1]?.toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql') {
    try {
      new URL(value);
    } catch {
      throw new BadDbLocation(`${redactUrl(value)} is not a valid URL`, 'write it as postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE');
    }
    return { kind: 'postgres', url: value };
  }
  if (scheme === 'file') return { kind: 'sqlite', file: new URL(value).pathname };
  if (scheme !== undefined) {
    throw new BadDbLocation(`${redactUrl(value)}: xentest keeps results in SQLite or PostgreSQL, not ${scheme}`, 'give a SQLite file, or a postgres://USER@HOST[:PORT]/DATABASE URL');
  }
  return { kind: 'sqlite', file: resolve(value) };
}

export function describeDbLocation(loc: DbLocation): string {
  return loc.kind === 'sqlite' ? loc.file : redactUrl(loc.url);
}

export interface OpenOptions {
  /** Create a SQLite file that does not exist yet (the commands that write); the others refuse a missing file. */
  create?: boolean;
  hooks?: StoreHooks;
  env?: NodeJS.ProcessEnv;
}

export async function openResultsDb(loc: DbLocation, options: OpenOptions = {}): Promise<ResultsDb> {
  const hooks = { ...pauseHook(options.env ?? process.env), ...options.hooks };
  if (loc.kind === 'postgres') return openPostgres(loc.url, { hooks });
  return openSqlite(loc.file, { create: options.create ?? false, hooks });
}

/**
 * XENTEST_DB_PAUSE_AFTER_ROWS=N: an ingest stops, inside its transaction,
 * once it has inserted N rows, says so on stderr, and waits to be killed.
 * The crash tests use it to kill an ingest truly in the middle.
 */
function pauseHook(env: NodeJS.ProcessEnv): StoreHooks {
  const n = Number(env.XENTEST_DB_PAUSE_AFTER_ROWS);
  if (!Number.isInteger(n) || n <= 0) return {};
  let paused = false;
  return {
    afterRows: async (rows) => {
      if (paused || rows < n) return;
      paused = true;
      process.stderr.write(`xentest: db: paused after ${rows} rows (XENTEST_DB_PAUSE_AFTER_ROWS)\n`);
      await new Promise((r) => setTimeout(r, 10 * 60_000));
    },
  };
}
