/**
 * When nights run: a cron expression (node-cron's dialect) and a time zone,
 * checked here so that `xentest check` and the scheduler say the same thing.
 */
import cron from 'node-cron';

const FIELD_RANGES: Record<string, string> = {
  second: 'seconds are 0-59',
  minute: 'minutes are 0-59',
  hour: 'hours are 0-23',
  dayOfMonth: 'days of the month are 1-31',
  month: 'months are 1-12 or JAN-DEC',
  dayOfWeek: 'days of the week are 0-7 (0 and 7 are Sunday) or SUN-SAT',
};

const FIELD_NAMES: Record<string, string> = {
  second: 'second',
  minute: 'minute',
  hour: 'hour',
  dayOfMonth: 'day-of-month',
  month: 'month',
  dayOfWeek: 'day-of-week',
};

export const SCHEDULE_HINT =
  'a schedule is 5 cron fields, "minute hour day-of-month month day-of-week" (e.g. "0 2 * * *" for 02:00 every night), or 6 with seconds first';

/** undefined if `expr` is a usable schedule, else what is wrong with it (for `xentest check`). */
export function validateSchedule(expr: string): string | undefined {
  const trimmed = expr.trim();
  if (trimmed === '') return 'the schedule is empty';
  const fields = trimmed.split(/\s+/);
  if (!trimmed.startsWith('@') && (fields.length < 5 || fields.length > 6)) {
    return `"${trimmed}" has ${fields.length} field${fields.length === 1 ? '' : 's'}; a schedule has 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)`;
  }
  const { valid, errors } = cron.validateDetailed(trimmed);
  if (valid) return undefined;
  const problems = errors.map((e) => {
    const name = FIELD_NAMES[e.field];
    const range = FIELD_RANGES[e.field];
    if (name === undefined || range === undefined) return e.message;
    if (/impossible/.test(e.message)) return `the day-of-month and month fields name no real date, so "${trimmed}" would never fire`;
    return `the ${name} field "${e.value ?? ''}" is not valid: ${range}`;
  });
  return problems.length > 0 ? problems.join('; ') : `"${trimmed}" is not a cron expression node-cron accepts`;
}

/** undefined if `tz` is a time zone this Node knows, else what is wrong. */
export function validateTimezone(tz: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return undefined;
  } catch {
    return `"${tz}" is not a time zone name known here (use an IANA name such as "Europe/London" or "UTC")`;
  }
}
