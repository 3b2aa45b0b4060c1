/**
 * The `localtime=` field of a status.log line.
 *
 * autotest renders it with `time.strftime('%b %d %H:%M:%S',
 * time.localtime(timestamp))` (autotest/autotest client/shared/base_job.py,
 * status_log_entry.__init__). Python never calls setlocale() there, so `%b` is
 * the C locale's English month abbreviation, and time.localtime() is the C
 * library's localtime(3), which follows the TZ environment variable.
 *
 * We reproduce that without depending on the process locale:
 *
 *   - the month names are our own English table, never Intl/toLocale*;
 *   - when TZ is unset, or names a zone ICU knows (an IANA name such as
 *     `Europe/Berlin`, optionally with glibc's leading `:`), we use the
 *     Date getters; Node re-reads TZ whenever `process.env.TZ` is assigned;
 *   - when TZ is a POSIX rule string ICU does not understand
 *     (`IST-5:30`, `CET-1CEST,M3.5.0,M10.5.0/3`), Node would silently fall
 *     back to UTC while glibc applies the rule, so we apply the rule
 *     ourselves (see {@link parsePosixTz});
 *   - a TZ that is neither (e.g. `Nowhere/Bogus`) is UTC, as in glibc.
 *
 * Known difference from glibc: a POSIX string with a DST name but no rules
 * (`EST5EDT` is NOT such a case: it is also an IANA zone) makes glibc use the
 * transitions of the `posixrules` zone file; we use the US rules
 * `M3.2.0,M11.1.0` that glibc falls back to when that file is missing.
 */

export const MONTH_ABBREVIATIONS = [
  'Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun',
  'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec',
] as const;

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** Broken-down local time, as C's `struct tm` holds it (month 0-11). */
interface BrokenDown {
  month: number;
  day: number;
  hours: number;
  minutes: number;
  seconds: number;
}

function brokenDownUtc(ms: number): BrokenDown {
  const d = new Date(ms);
  return {
    month: d.getUTCMonth(),
    day: d.getUTCDate(),
    hours: d.getUTCHours(),
    minutes: d.getUTCMinutes(),
    seconds: d.getUTCSeconds(),
  };
}

function brokenDownProcessLocal(ms: number): BrokenDown {
  const d = new Date(ms);
  return {
    month: d.getMonth(),
    day: d.getDate(),
    hours: d.getHours(),
    minutes: d.getMinutes(),
    seconds: d.getSeconds(),
  };
}

/**
 * `strftime('%b %d %H:%M:%S', localtime(timestamp))` with TZ taken from
 * `tz` (default: the current `process.env.TZ`).
 *
 * `timestamp` is in seconds since the epoch; fractions are dropped the way
 * Python's int() drops them (towards zero).
 */
export function formatLocaltime(timestamp: number, tz: string | undefined = process.env.TZ): string {
  const ms = Math.trunc(timestamp) * 1000;
  const t = localBrokenDown(ms, tz);
  return `${MONTH_ABBREVIATIONS[t.month]} ${pad2(t.day)} ${pad2(t.hours)}:${pad2(t.minutes)}:${pad2(t.seconds)}`;
}

function localBrokenDown(ms: number, tz: string | undefined): BrokenDown {
  const zone = resolveZone(tz);
  switch (zone.kind) {
    case 'process':
      return brokenDownProcessLocal(ms);
    case 'iana':
      return brokenDownIana(ms, zone.name);
    case 'posix':
      return brokenDownUtc(ms - posixOffsetWestSeconds(zone.rule, ms / 1000) * 1000);
    case 'utc':
      return brokenDownUtc(ms);
  }
}

type Zone =
  | { kind: 'process' }
  | { kind: 'iana'; name: string }
  | { kind: 'posix'; rule: PosixTz }
  | { kind: 'utc' };

const zoneCache = new Map<string, Zone>();

function resolveZone(tz: string | undefined): Zone {
  if (tz === undefined) return { kind: 'process' };
  let zone = zoneCache.get(tz);
  if (zone === undefined) {
    zone = resolveZoneUncached(tz);
    zoneCache.set(tz, zone);
  }
  return zone;
}

function resolveZoneUncached(tz: string): Zone {
  let name = tz.startsWith(':') ? tz.slice(1) : tz;
  if (name === '') return { kind: 'utc' };
  const zoneinfo = /^\/usr\/(?:share\/)?(?:lib\/)?zoneinfo\/(.+)$/.exec(name);
  if (zoneinfo) name = zoneinfo[1]!;
  else if (name.startsWith('/')) return { kind: 'process' }; // e.g. /etc/localtime: Node resolves it itself
  if (ianaZoneKnown(name)) return { kind: 'iana', name };
  const rule = parsePosixTz(name);
  if (rule) return { kind: 'posix', rule };
  return { kind: 'utc' };
}

function ianaZoneKnown(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

const ianaFormatters = new Map<string, Intl.DateTimeFormat>();

/**
 * Broken-down time in a named zone. Formatting is done with `en-US` and
 * Latin digits, and only the numeric parts are used, so the process locale
 * plays no part.
 */
function brokenDownIana(ms: number, name: string): BrokenDown {
  let fmt = ianaFormatters.get(name);
  if (fmt === undefined) {
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: name,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      numberingSystem: 'latn',
    });
    ianaFormatters.set(name, fmt);
  }
  const parts: Record<string, number> = {};
  for (const p of fmt.formatToParts(new Date(ms))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  return {
    month: parts['month']! - 1,
    day: parts['day']!,
    hours: parts['hour']! % 24,
    minutes: parts['minute']!,
    seconds: parts['second']!,
  };
}

// ---------------------------------------------------------------------------
// POSIX TZ strings (IEEE 1003.1 "TZ" with glibc's extensions for the time of
// a rule: hours may be negative or exceed 24).

/** When a DST transition happens in a given year. */
type TzDate =
  | { kind: 'M'; month: number; week: number; weekday: number; time: number }
  | { kind: 'J'; day: number; time: number } // 1..365, Feb 29 never counted
  | { kind: 'N'; day: number; time: number }; // 0..365, Feb 29 counted

export interface PosixTz {
  /** Seconds WEST of UTC in standard time (POSIX sign convention). */
  stdOffset: number;
  /** Seconds west of UTC in daylight time; absent for a fixed-offset zone. */
  dstOffset?: number;
  start?: TzDate;
  end?: TzDate;
}

/**
 * Parse a POSIX TZ rule string: `std offset [dst [offset] [,start[/time],end[/time]]]`.
 * Returns undefined when it is not one (glibc then uses UTC).
 */
export function parsePosixTz(s: string): PosixTz | undefined {
  let i = 0;
  const name = (): boolean => {
    if (s[i] === '<') {
      const close = s.indexOf('>', i);
      if (close < 0 || close - i - 1 < 3) return false;
      i = close + 1;
      return true;
    }
    const m = /^[A-Za-z]{3,}/.exec(s.slice(i));
    if (!m) return false;
    i += m[0].length;
    return true;
  };
  const hms = (allowSign: boolean, maxHours: number): number | undefined => {
    const m = (allowSign ? /^([+-]?)(\d{1,3})(?::(\d{1,2})(?::(\d{1,2}))?)?/ : /^()(\d{1,3})(?::(\d{1,2})(?::(\d{1,2}))?)?/).exec(s.slice(i));
    if (!m) return undefined;
    const h = Number(m[2]);
    const mi = m[3] === undefined ? 0 : Number(m[3]);
    const se = m[4] === undefined ? 0 : Number(m[4]);
    if (h > maxHours || mi > 59 || se > 59) return undefined;
    i += m[0].length;
    const v = h * 3600 + mi * 60 + se;
    return m[1] === '-' ? -v : v;
  };
  const date = (): TzDate | undefined => {
    let d: TzDate;
    const rest = s.slice(i);
    let m: RegExpExecArray | null;
    if ((m = /^M(\d{1,2})\.(\d)\.(\d)/.exec(rest))) {
      const month = Number(m[1]), week = Number(m[2]), weekday = Number(m[3]);
      if (month < 1 || month > 12 || week < 1 || week > 5 || weekday > 6) return undefined;
      d = { kind: 'M', month, week, weekday, time: 7200 };
    } else if ((m = /^J(\d{1,3})/.exec(rest))) {
      const day = Number(m[1]);
      if (day < 1 || day > 365) return undefined;
      d = { kind: 'J', day, time: 7200 };
    } else if ((m = /^(\d{1,3})/.exec(rest))) {
      const day = Number(m[1]);
      if (day > 365) return undefined;
      d = { kind: 'N', day, time: 7200 };
    } else {
      return undefined;
    }
    i += m[0].length;
    if (s[i] === '/') {
      i++;
      const t = hms(true, 167);
      if (t === undefined) return undefined;
      d.time = t;
    }
    return d;
  };

  if (!name()) return undefined;
  const stdOffset = hms(true, 24);
  if (stdOffset === undefined) return undefined;
  if (i === s.length) return { stdOffset };
  if (!name()) return undefined;
  let dstOffset = stdOffset - 3600;
  if (i < s.length && s[i] !== ',') {
    const o = hms(true, 24);
    if (o === undefined) return undefined;
    dstOffset = o;
  }
  let start: TzDate | undefined;
  let end: TzDate | undefined;
  if (i === s.length) {
    start = { kind: 'M', month: 3, week: 2, weekday: 0, time: 7200 };
    end = { kind: 'M', month: 11, week: 1, weekday: 0, time: 7200 };
  } else {
    if (s[i] !== ',') return undefined;
    i++;
    start = date();
    if (!start || s[i] !== ',') return undefined;
    i++;
    end = date();
    if (!end || i !== s.length) return undefined;
  }
  return { stdOffset, dstOffset, start, end };
}

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

/** Seconds from the start of `year` (local) to the transition's local wall time. */
function transitionSecondsIntoYear(d: TzDate, year: number): number {
  let dayOfYear: number; // 0-based
  switch (d.kind) {
    case 'J':
      dayOfYear = d.day - 1 + (isLeap(year) && d.day >= 60 ? 1 : 0);
      break;
    case 'N':
      dayOfYear = d.day;
      break;
    case 'M': {
      const firstOfMonth = Date.UTC(year, d.month - 1, 1);
      const firstWeekday = new Date(firstOfMonth).getUTCDay();
      let dom = 1 + ((d.weekday - firstWeekday + 7) % 7) + (d.week - 1) * 7;
      const daysInMonth = new Date(Date.UTC(year, d.month, 0)).getUTCDate();
      while (dom > daysInMonth) dom -= 7;
      dayOfYear = (Date.UTC(year, d.month - 1, dom) - Date.UTC(year, 0, 1)) / 86400000;
      break;
    }
  }
  return dayOfYear * 86400 + d.time;
}

/** The offset (seconds west of UTC) in force at `t` (seconds since the epoch). */
export function posixOffsetWestSeconds(rule: PosixTz, t: number): number {
  if (rule.dstOffset === undefined || !rule.start || !rule.end) return rule.stdOffset;
  const year = new Date((t - rule.stdOffset) * 1000).getUTCFullYear();
  const yearStart = Date.UTC(year, 0, 1) / 1000;
  // The start rule is given in standard local time, the end rule in daylight time.
  const startUtc = yearStart + transitionSecondsIntoYear(rule.start, year) + rule.stdOffset;
  const endUtc = yearStart + transitionSecondsIntoYear(rule.end, year) + rule.dstOffset;
  const inDst = startUtc < endUtc ? t >= startUtc && t < endUtc : !(t >= endUtc && t < startUtc);
  return inDst ? rule.dstOffset : rule.stdOffset;
}
