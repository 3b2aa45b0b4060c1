/**
 * `xentest schedule FILE [--cron EXPR] [--timezone TZ]`: a long-running
 * service (init/xentest-schedule.service) that starts a night whenever the
 * schedule says so. The night's lock keeps a scheduled, a manual and a
 * resumed night from ever running at once: a tick that finds the lock taken
 * is skipped.
 */
import { parseArgs } from 'node:util';
import { ControlFileInvalid, loadControlFile } from '../../shared/controlfile/model.js';
import { LockBusy } from '../lock.js';
import { buildNight } from '../pipeline/nightly.js';
import { startSchedule } from '../schedule.js';
import { formatProblem } from './check.js';
import { UsageError } from './usage.js';

export async function scheduleCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { cron: { type: 'string' }, timezone: { type: 'string' } },
    allowPositionals: true,
  });
  const file = positionals[0];
  const usage = 'usage: xentest schedule FILE [--cron EXPR] [--timezone TZ]';
  if (file === undefined || positionals.length !== 1) throw new UsageError('schedule takes exactly one control file', usage);
  const control = loadControlFile(file);
  const expr = values.cron ?? control.preferences.schedule?.value;
  if (!expr) {
    throw new UsageError(`${file} has no schedule`, `add "schedule = 0 2 * * *" (02:00 every night) to [Preferences], or give --cron; ${usage}`);
  }
  const timezone = values.timezone ?? control.preferences.scheduleTimezone?.value;
  const log = (line: string): void => {
    process.stdout.write(line + '\n');
  };
  const night = async (): Promise<void> => {
    try {
      const report = await buildNight(file, { say: log });
      const end = report.end;
      log(end.kind === 'going-down' ? `night ${report.night}: rebooting` : `night ${report.night}: ${end.status} ${end.reason}`);
    } catch (e) {
      if (e instanceof LockBusy) log(`schedule: skipped: ${e.message}`);
      else if (e instanceof ControlFileInvalid) for (const p of e.problems) log(formatProblem(p));
      else throw e;
    }
  };
  const scheduler = startSchedule(expr, night, { log, ...(timezone ? { timezone } : {}) });
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  scheduler.stop();
  await scheduler.whenIdle();
  return 0;
}
