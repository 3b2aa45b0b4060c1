/**
 * After the night's outcome is known: store the night in the results
 * database, then write the morning report (and run report_command, to mail
 * it). Both read the night's files only, so either can be entered again
 * after a kill and does the same; and neither can lose anything, because the
 * files stay the truth: a database that cannot be reached is a WARN that
 * says how to store the night later, and the report is then made from the
 * files alone.
 */
import { join } from 'node:path';
import { BadDbLocation, ResultsDbError } from '../../results/db/errors.js';
import { describeDbLocation, openResultsDb, resolveDbLocation, type DbLocation } from '../../results/db/open.js';
import { InvalidNightRecord } from '../../results/db/store.js';
import { CompareError } from '../../results/compare.js';
import { loadNightRecord } from '../../results/load.js';
import { makeReport, reportPaths, reportSources, writeReportFiles, type ReportSources } from '../../results/report/make.js';
import { subjectLine } from '../../results/report/text.js';
import { describeResult } from '../../../shared/process/run.js';
import type { Night } from '../night.js';
import type { Step, StepResult } from '../runner.js';

const REPORT_COMMAND_TIMEOUT_MS = 5 * 60_000;

/** results_db, else XENTEST_DB, else the state directory's. */
function dbLocation(night: Night): DbLocation {
  return resolveDbLocation(night.control.preferences.resultsDb?.value, night.env);
}

function why(e: unknown): string {
  if (e instanceof ResultsDbError || e instanceof BadDbLocation) return `${e.message} (${e.hint})`;
  if (e instanceof InvalidNightRecord || e instanceof CompareError) return e.message;
  throw e;
}

export function storeResultsStep(night: Night): Step {
  return {
    name: 'results.store',
    async run(ctx): Promise<StepResult> {
      const record = loadNightRecord(night.dir);
      ctx.checkpoint('middle');
      let where = 'the results database';
      let db;
      try {
        const loc = dbLocation(night);
        where = describeDbLocation(loc);
        db = await openResultsDb(loc, { create: true, env: night.env });
        const r = await db.ingest(record);
        return { status: 'GOOD', reason: `${r.tests} tests of ${r.domains} domains in ${where}`, outputs: { db: where } };
      } catch (e) {
        return {
          status: 'WARN',
          reason: `not stored in the results database: ${why(e)}; the night's files are kept, and "xentest db ingest ${night.dir}" stores them later`,
          outputs: { db: where },
        };
      } finally {
        await db?.close();
      }
    },
  };
}

/** The comparison and history, or why there are none (the night was not stored, the database is away). */
async function sourcesFor(night: Night, record: ReturnType<typeof loadNightRecord>): Promise<ReportSources> {
  const stored = night.journal.step('results.store');
  if (stored.status !== 'GOOD') return { comparison: null, history: [], notCompared: 'the night could not be stored in the results database (see results.store)' };
  let db;
  try {
    db = await openResultsDb(dbLocation(night), { create: false, env: night.env });
    return await reportSources(db, record);
  } catch (e) {
    return { comparison: null, history: [], notCompared: why(e) };
  } finally {
    await db?.close();
  }
}

export function reportStep(night: Night): Step {
  return {
    name: 'results.report',
    async run(ctx): Promise<StepResult> {
      const record = loadNightRecord(night.dir);
      const sources = await sourcesFor(night, record);
      const paths = reportPaths(night.dir);
      const report = makeReport(record, sources, paths.html);
      writeReportFiles(report, paths);
      // The newest night's report has a place that does not move: where a person looks each morning.
      const latest = { html: join(night.paths.stateDir, 'report.html'), text: join(night.paths.stateDir, 'report.txt') };
      writeReportFiles(report, latest);
      ctx.checkpoint('middle');
      const verdict = `${report.data.verdict.word}: ${report.data.verdict.headline}`;
      const outputs = { html: paths.html, text: paths.text, verdict: report.data.verdict.word };

      const command = night.control.preferences.reportCommand?.value;
      if (command === undefined) return { status: 'GOOD', reason: `${verdict} (${paths.html})`, outputs };
      // A report_command that already ran to the end (the step was killed after it) is not run again: one mail a night.
      if (ctx.record.outputs.reportCommandDone === true) return { status: 'GOOD', reason: `${verdict} (${paths.html}; report_command ran)`, outputs };
      const r = await ctx.run(command, {
        cwd: night.dir,
        timeoutMs: REPORT_COMMAND_TIMEOUT_MS,
        env: {
          ...night.env,
          XENTEST_NIGHT: record.night,
          XENTEST_VERDICT: report.data.verdict.word,
          XENTEST_REPORT_SUBJECT: subjectLine(report.data),
          XENTEST_REPORT_HTML: paths.html,
          XENTEST_REPORT_TEXT: paths.text,
        },
      });
      if (r.exitStatus !== 0) return { status: 'WARN', reason: `${verdict}; report_command failed: ${describeResult(r)}`, outputs };
      ctx.saveOutputs({ reportCommandDone: true });
      return { status: 'GOOD', reason: `${verdict} (${paths.html}; report_command ran)`, outputs };
    },
  };
}
