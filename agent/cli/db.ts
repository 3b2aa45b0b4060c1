/**
 * `xentest db ingest NIGHT_DIR...` and `xentest db rebuild DIR`: the results
 * database from the nights' files. Both take `--db URL|FILE` (else
 * XENTEST_DB, else <state dir>/results.db).
 *
 * Exit status: 0 done; 1 some night could not be read (the others were
 * stored); 64 a usage mistake; 69 the database cannot be opened or reached.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BadDbLocation, EXIT_DB_UNAVAILABLE, ResultsDbError } from '../results/db/errors.js';
import { ingestNightDirs, NoNightsThere, rebuildFromFiles, type FilesResult, type LoadNight } from '../results/db/files.js';
import { openResultsDb, resolveDbLocation, type OpenOptions } from '../results/db/open.js';
import type { IngestResult, ResultsDb } from '../results/db/store.js';
import { loadNightRecord } from '../results/load.js';
import { EXIT_USAGE, UsageError } from './usage.js';

const INGEST_USAGE = 'usage: xentest db ingest [--db URL|FILE] NIGHT_DIR...';
const REBUILD_USAGE = 'usage: xentest db rebuild [--db URL|FILE] DIR';
export const DB_USAGE = `usage: xentest db ingest [--db URL|FILE] NIGHT_DIR...\n       xentest db rebuild [--db URL|FILE] DIR`;

/**
 * Opens the database named by --db (or XENTEST_DB, or the default), runs
 * fn, and closes it; a database a user cannot use is one message and
 * EXIT_DB_UNAVAILABLE, a bad --db a usage message and EXIT_USAGE.
 */
export async function withResultsDb(given: string | undefined, options: OpenOptions, fn: (db: ResultsDb) => Promise<number>): Promise<number> {
  let db: ResultsDb | undefined;
  try {
    const loc = resolveDbLocation(given);
    db = await openResultsDb(loc, options);
    return await fn(db);
  } catch (e) {
    if (e instanceof BadDbLocation) {
      process.stderr.write(`xentest: ${e.message}\n  hint: ${e.hint}\n`);
      return EXIT_USAGE;
    }
    if (e instanceof ResultsDbError) {
      process.stderr.write(`xentest: ${e.message}\n  hint: ${e.hint}\n`);
      return EXIT_DB_UNAVAILABLE;
    }
    throw e;
  } finally {
    await db?.close();
  }
}

function describe(r: IngestResult): string {
  const tests = `${r.tests} test${r.tests === 1 ? '' : 's'}`;
  const domains = `${r.domains} domain${r.domains === 1 ? '' : 's'}`;
  return `night ${r.night} of ${r.machine}: ${domains}, ${tests}`;
}

function reportFailures(r: FilesResult): number {
  for (const f of r.failed) process.stderr.write(`xentest: ${f.dir}: not stored: ${f.message}\n`);
  return r.failed.length > 0 ? 1 : 0;
}

export async function dbIngest(argv: string[], loadNight: LoadNight = loadNightRecord): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { db: { type: 'string' } }, allowPositionals: true, strict: true });
  if (positionals.length === 0) throw new UsageError('db ingest: no night directory given', INGEST_USAGE);
  return withResultsDb(values.db, { create: true }, async (db) => {
    const r = await ingestNightDirs(db, positionals, loadNight, (n) => {
      process.stdout.write(`${n.replaced ? 'replaced' : 'ingested'} ${describe(n)}\n`);
    });
    if (r.ingested.length > 0) process.stdout.write(`results database: ${db.location}\n`);
    return reportFailures(r);
  });
}

export async function dbRebuild(argv: string[], loadNight: LoadNight = loadNightRecord): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { db: { type: 'string' } }, allowPositionals: true, strict: true });
  if (positionals.length !== 1) throw new UsageError(`db rebuild: give one directory (a state directory or its nights/), not ${positionals.length}`, REBUILD_USAGE);
  const dir = resolve(positionals[0] as string);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new UsageError(`db rebuild: ${dir} is not a directory`, 'give the state directory (/var/lib/xentest) or its nights/ directory');
  }
  return withResultsDb(values.db, { create: true }, async (db) => {
    const started = Date.now();
    let r;
    try {
      r = await rebuildFromFiles(db, dir, loadNight);
    } catch (e) {
      if (e instanceof NoNightsThere) {
        process.stderr.write(`xentest: db rebuild: ${e.message}; the database was left as it was\n  hint: give the state directory (/var/lib/xentest) or its nights/ directory\n`);
        return EXIT_USAGE;
      }
      throw e;
    }
    const tests = r.ingested.reduce((n, x) => n + x.tests, 0);
    const machines = new Set(r.ingested.map((x) => x.machine)).size;
    process.stdout.write(
      `rebuilt ${db.location} from ${r.nightsDir}: ${r.ingested.length} night${r.ingested.length === 1 ? '' : 's'} ` +
        `of ${machines} machine${machines === 1 ? '' : 's'}, ${tests} tests, in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
    return reportFailures(r);
  });
}

export async function dbCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'ingest') return dbIngest(rest);
  if (sub === 'rebuild') return dbRebuild(rest);
  throw new UsageError(sub === undefined ? 'db: say what to do' : `db: unknown subcommand "${sub}"`, DB_USAGE);
}
