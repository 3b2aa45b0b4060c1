/**
 * `xentest build FILE` and `xentest resume`: start or continue a night, and
 * say plainly how it ended. Exit 0: the night went well, or the machine is
 * rebooting into the new build; 1: the night failed (build, boot, ...).
 * (2: the control file cannot be used, and 3: another night holds the lock,
 * come from main.ts, as for every command.)
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { JobStatus } from '../../shared/statuslog/entry.js';
import { buildNight, resumeNight, type NightReport } from '../pipeline/nightly.js';
import { reportPaths } from '../results/report/make.js';
import { formatSummary, summariseNight } from '../results/summary.js';
import { UsageError } from './usage.js';

export const EXIT_NIGHT_FAILED = 1;

const FAILED: readonly JobStatus[] = ['ABORT', 'ERROR', 'FAIL'];

function conclude(report: NightReport): number {
  const { end } = report;
  if (end.kind === 'going-down') {
    process.stdout.write(`night ${report.night}: rebooting; it continues at boot (xentest resume)\n`);
    return 0;
  }
  process.stdout.write(`night ${report.night}: ${end.status}${end.reason ? `: ${end.reason}` : ''}\n  results: ${report.dir}\n`);
  // Once the domains' results are collected, what each domain did (the resume unit's output goes to the journal).
  if (existsSync(join(report.dir, 'domains'))) process.stdout.write(formatSummary(summariseNight(report.dir)));
  const page = reportPaths(report.dir).html;
  if (existsSync(page)) process.stdout.write(`morning report: ${page}\n`);
  return FAILED.includes(end.status) ? EXIT_NIGHT_FAILED : 0;
}

export function buildCommand(argv: string[]): Promise<number> {
  const [file, ...extra] = argv;
  if (file === undefined || extra.length > 0 || file.startsWith('-')) {
    throw new UsageError('build takes exactly one control file', 'usage: xentest build FILE');
  }
  return buildNight(file).then(conclude);
}

export function resumeCommand(argv: string[]): Promise<number> {
  if (argv.length > 0) throw new UsageError('resume takes no arguments', 'usage: xentest resume');
  return resumeNight().then((report) => {
    if (report) return conclude(report);
    process.stdout.write('no night in progress\n');
    return 0;
  });
}
