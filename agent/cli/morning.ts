/**
 * `xentest report [NIGHT | NIGHT_DIR] [--db URL|FILE] [--machine M] [--base NIGHT] [--nights N] [--out FILE] [--text]`:
 * the morning report of a night (default: the newest in the results
 * database). It writes the page and the summary next to the night's results
 * (nights/<id>/report.html and report.txt; --out FILE puts the page there
 * instead) and prints the summary. --text only prints the summary, writing
 * nothing: `xentest report --text | mail -s ...`.
 *
 * NIGHT_DIR (a night's directory) reports that night from its files, compared
 * with earlier nights if the database has it, and without a comparison when
 * the database cannot be used.
 *
 * Exit status: 0 the report was made (whatever the night's verdict:
 * `xentest compare` tells regressions by its status); 1 the night's files
 * cannot be read or the report cannot be written; 64 a usage mistake
 * (including a night not in the database); 69 the database cannot be used
 * (only when a NIGHT, not a NIGHT_DIR, was given).
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CompareError } from '../results/compare.js';
import { BadDbLocation, ResultsDbError } from '../results/db/errors.js';
import { openResultsDb, resolveDbLocation } from '../results/db/open.js';
import { loadNightRecord } from '../results/load.js';
import type { NightRecord } from '../results/record.js';
import { HISTORY_NIGHTS, makeReport, reportPaths, reportSources, writeReportFiles, type ReportSources } from '../results/report/make.js';
import { compareOrSay } from './compare.js';
import { withResultsDb } from './db.js';
import { REPORT_USAGE, UsageError } from './usage.js';


interface ReportArgs {
  db?: string;
  machine?: string;
  base?: string;
  nights?: number;
  out?: string;
  text: boolean;
}

function isNightDir(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory() && existsSync(join(p, 'journal.json'));
}

/** Loads a night's files, or says (exit 1) why they cannot be read. */
function load(dir: string): NightRecord | number {
  try {
    return loadNightRecord(dir);
  } catch (e) {
    if (!(e instanceof Error)) throw e;
    process.stderr.write(`xentest: report: the night's files in ${dir} cannot be read: ${e.message}\n  hint: "xentest db rebuild" and "xentest parse ${dir}" say more about what is wrong there\n`);
    return 1;
  }
}

function emit(record: NightRecord, sources: ReportSources, args: ReportArgs): number {
  const paths = reportPaths(record.dir);
  const htmlPath = args.out !== undefined ? resolve(args.out) : paths.html;
  const report = makeReport(record, sources, args.text ? undefined : htmlPath);
  if (!args.text) {
    try {
      writeReportFiles(report, { html: htmlPath, text: paths.text });
    } catch (e) {
      process.stderr.write(`xentest: report: cannot write the report: ${(e as Error).message}\n  hint: check that the directory exists and is writable, or give --out FILE\n`);
      return 1;
    }
  }
  process.stdout.write(report.text);
  return 0;
}

/** A night's directory: compared if the database can be used and has it, else from the files alone. */
async function fromDirectory(dir: string, args: ReportArgs): Promise<number> {
  const record = load(dir);
  if (typeof record === 'number') return record;
  let sources: ReportSources;
  try {
    const db = await openResultsDb(resolveDbLocation(args.db), { create: false });
    try {
      sources = await reportSources(db, record, { ...(args.base !== undefined ? { base: args.base } : {}), ...(args.nights !== undefined ? { nights: args.nights } : {}) });
    } finally {
      await db.close();
    }
  } catch (e) {
    if (e instanceof BadDbLocation) throw new UsageError(e.message, e.hint);
    if (!(e instanceof ResultsDbError || e instanceof CompareError)) throw e;
    sources = { comparison: null, history: [], notCompared: e instanceof CompareError ? `${e.message} ("xentest db ingest ${dir}" adds it)` : e.message };
  }
  return emit(record, sources, args);
}

/** A night of the database (the newest by default). */
function fromDatabase(night: string | undefined, args: ReportArgs): Promise<number> {
  return withResultsDb(args.db, { create: false }, async (db) => {
    const comparison = await compareOrSay(db, 'report', {
      ...(night !== undefined ? { night } : {}),
      ...(args.machine !== undefined ? { machine: args.machine } : {}),
      ...(args.base !== undefined ? { base: args.base } : {}),
    });
    if (typeof comparison === 'number') return comparison;
    const dir = comparison.night.dir;
    if (!isNightDir(dir)) {
      process.stderr.write(
        `xentest: report: night ${comparison.night.night} is in the database, but its files are not in ${dir}\n` +
          `  hint: the report is made from the night's files (logs included); if they moved, run "xentest db rebuild" on their new place\n`,
      );
      return 1;
    }
    const record = load(dir);
    if (typeof record === 'number') return record;
    const history = await db.nightHistory(comparison.night, args.nights ?? HISTORY_NIGHTS);
    return emit(record, { comparison, history }, args);
  });
}

export async function reportCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      db: { type: 'string' },
      machine: { type: 'string' },
      base: { type: 'string' },
      nights: { type: 'string' },
      out: { type: 'string' },
      text: { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 1) throw new UsageError(`report: one night at a time (given ${positionals.join(', ')})`, REPORT_USAGE);
  if (values.out !== undefined && values.text) throw new UsageError('report: --text writes nothing, so --out has no place with it', REPORT_USAGE);
  if (values.out === '') throw new UsageError('report: --out needs a file name', REPORT_USAGE);
  let nights: number | undefined;
  if (values.nights !== undefined) {
    nights = Number(values.nights);
    if (!Number.isInteger(nights) || nights < 1 || nights > 1000) throw new UsageError(`report: --nights ${values.nights} is not a number of nights from 1 to 1000`, REPORT_USAGE);
  }
  const args: ReportArgs = {
    text: values.text,
    ...(values.db !== undefined ? { db: values.db } : {}),
    ...(values.machine !== undefined ? { machine: values.machine } : {}),
    ...(values.base !== undefined ? { base: values.base } : {}),
    ...(nights !== undefined ? { nights } : {}),
    ...(values.out !== undefined ? { out: values.out } : {}),
  };
  const given = positionals[0];
  if (given !== undefined && (given.includes('/') || isNightDir(resolve(given)))) {
    const dir = resolve(given);
    if (!isNightDir(dir)) throw new UsageError(`report: ${given} is not a night's directory (it has no journal.json)`, 'give a night id from the database, or a directory under the state directory\'s nights/');
    return fromDirectory(dir, args);
  }
  return fromDatabase(given, args);
}
