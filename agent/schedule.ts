/**
 * Nights on a cron schedule (node-cron). One night at a time in this process:
 * a tick that comes while the previous night still runs is skipped (and
 * logged), never queued. Across processes the night's own lock does the
 * excluding (a night resumed at boot, a `xentest build` by hand).
 *
 * Expressions are node-cron's: 5 fields (minute hour day-of-month month
 * day-of-week) or 6 with seconds first; names (MON, JAN), ranges, lists and
 * steps; the times are in `timezone` (default: the machine's).
 */
import cron, { type ScheduledTask } from 'node-cron';
import { SCHEDULE_HINT, validateSchedule, validateTimezone } from '../shared/controlfile/schedule.js';

export { SCHEDULE_HINT, validateSchedule, validateTimezone };

export interface Scheduler {
  /** No more ticks. A night already running is left to finish (see whenIdle). */
  stop(): void;
  /**
   * The next n times a night would start, from node-cron itself (its
   * getNextRuns, which knows the timezone); empty once stopped.
   */
  nextRuns(n: number): Date[];
  /** Resolves when no night is running (at once if none is). */
  whenIdle(): Promise<void>;
}

export interface ScheduleOptions {
  /** An IANA zone name, e.g. "Europe/London"; default: the machine's zone. */
  timezone?: string;
  /** One journald-friendly line per event: night started, finished, failed, tick skipped. */
  log: (line: string) => void;
}

/** A schedule or time zone a user wrote that cannot be used. */
export class ScheduleError extends Error {
  override readonly name = 'ScheduleError';

  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

export function startSchedule(expr: string, night: () => Promise<void>, options: ScheduleOptions): Scheduler {
  const problem = validateSchedule(expr);
  if (problem) throw new ScheduleError(`schedule "${expr}": ${problem}`, SCHEDULE_HINT);
  if (options.timezone !== undefined) {
    const tzProblem = validateTimezone(options.timezone);
    if (tzProblem) throw new ScheduleError(tzProblem, 'see /usr/share/zoneinfo for the names, or leave the time zone out to use the machine\'s');
  }
  const { log } = options;
  let running: { since: Date; done: Promise<void> } | undefined;
  let stopped = false;

  const tick = (at: Date): void => {
    if (stopped) return;
    if (running) {
      log(`schedule: skipping the night due at ${at.toISOString()}: the night started at ${running.since.toISOString()} is still running`);
      return;
    }
    const since = new Date();
    log(`schedule: night starting (due at ${at.toISOString()})`);
    const done = (async () => {
      try {
        await night();
        log(`schedule: night finished after ${formatElapsed(Date.now() - since.getTime())}`);
      } catch (e) {
        // One bad night must not end the schedule; the night records its own failures.
        log(`schedule: night failed after ${formatElapsed(Date.now() - since.getTime())}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      } finally {
        running = undefined;
        log(next());
      }
    })();
    running = { since, done };
  };

  const task: ScheduledTask = cron.schedule(
    expr,
    // Never hand node-cron the night's promise: overlap is decided here, and
    // a night may run far longer than any tick interval.
    (ctx) => tick(ctx.date),
    {
      ...(options.timezone !== undefined ? { timezone: options.timezone } : {}),
      name: 'xentest-nightly',
      logger: {
        info: () => undefined,
        debug: () => undefined,
        warn: (m) => log(`schedule: node-cron: ${m}`),
        error: (m) => log(`schedule: node-cron: ${m instanceof Error ? m.message : m}`),
      },
    },
  );

  const nextRuns = (n: number): Date[] => (stopped || n <= 0 ? [] : task.getNextRuns(n));
  const next = (): string => {
    const [d] = nextRuns(1);
    return d ? `schedule: next night at ${d.toISOString()}` : 'schedule: stopped';
  };
  log(`schedule: "${expr}"${options.timezone ? ` (${options.timezone})` : ''}; ${next().replace(/^schedule: /, '')}`);

  return {
    stop(): void {
      if (stopped) return;
      stopped = true;
      void task.destroy();
      log(`schedule: stopped${running ? '; the running night is left to finish' : ''}`);
    },
    nextRuns,
    whenIdle: () => running?.done ?? Promise.resolve(),
  };
}

function formatElapsed(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  const m = Math.round(s / 60);
  return m < 120 ? `${m} min` : `${Math.floor(m / 60)} h ${m % 60} min`;
}
