/**
 * Making a night's morning report: its files, its comparison and its
 * machine's history from the results database, laid out as the HTML page and
 * the text summary, written next to the night's results.
 *
 *   nights/<id>/report.html    the page
 *   nights/<id>/report.txt     the summary (an email's body; its first line the subject)
 *
 * When the database cannot be used, the report is still made, from the files
 * alone, and says it was not compared: a database outage loses nothing.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../../../shared/atomic.js';
import { compareNight, type Comparison } from '../compare.js';
import type { NightHistoryRow, ResultsDb } from '../db/store.js';
import type { NightRecord } from '../record.js';
import { renderReportHtml } from './html.js';
import { buildReport, type ReportData } from './model.js';
import { renderReportText } from './text.js';

/** Nights drawn in the charts. */
export const HISTORY_NIGHTS = 30;

export interface ReportSources {
  comparison: Comparison | null;
  history: NightHistoryRow[];
  notCompared?: string;
}

/** The comparison and the history of a night that is in the database. */
export async function reportSources(db: ResultsDb, record: NightRecord, options: { base?: string; nights?: number } = {}): Promise<ReportSources> {
  const comparison = await compareNight(db, { night: record.night, machine: record.machine, ...(options.base !== undefined ? { base: options.base } : {}) });
  const history = await db.nightHistory(comparison.night, options.nights ?? HISTORY_NIGHTS);
  return { comparison, history };
}

export interface MadeReport {
  data: ReportData;
  html: string;
  text: string;
}

export function makeReport(record: NightRecord, sources: ReportSources, htmlPath?: string): MadeReport {
  const data = buildReport({
    record,
    comparison: sources.comparison,
    history: sources.history,
    ...(sources.notCompared !== undefined ? { notCompared: sources.notCompared } : {}),
  });
  return { data, html: renderReportHtml(data), text: renderReportText(data, htmlPath) };
}

export function reportPaths(nightDir: string): { html: string; text: string } {
  return { html: join(nightDir, 'report.html'), text: join(nightDir, 'report.txt') };
}

/** Writes each file whole or not at all (a kill leaves the previous report, never half of one). */
export function writeReportFiles(report: MadeReport, paths: { html?: string; text?: string }): void {
  if (paths.html) writeFileAtomic(paths.html, report.html);
  if (paths.text) writeFileAtomic(paths.text, report.text);
}
