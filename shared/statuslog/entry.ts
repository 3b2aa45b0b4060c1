/**
 * One autotest status.log (status_version 1) entry, rendered byte for byte as
 * autotest renders it.
 *
 * Source of truth: autotest/autotest client/shared/base_job.py,
 * `status_log_entry` (`__init__`, `render`) and `status_logger.render_entry`,
 * plus client/shared/log.py (`job_statuses`, `is_valid_status`). In short:
 *
 *   line  = TAB*indent + "\t".join([status, subdir or "----",
 *           operation or "----"] + ["k=v" for each field] + [message line 1])
 *   then  "  " + line for every further message line, each on its own line;
 *   the fields end with timestamp=<int> and localtime=<%b %d %H:%M:%S>;
 *   TABs in message line 1 become 8 spaces.
 *
 * Where autotest raises ValueError (a TAB, LF, CR, VT or FF in the status,
 * subdir, operation or a field; a CR, VT or FF in the first message line) we
 * sanitise instead, because that text often comes from a user's command
 * output. The rules are listed on {@link sanitiseName},
 * {@link sanitiseFieldValue} and {@link renderMessage}; every one of them only
 * changes text that autotest would have refused, or that would make autotest's
 * own parser misread the line, so for ordinary input the bytes are autotest's.
 */
import { formatLocaltime } from './localtime.js';

/**
 * autotest's `job_statuses` (client/shared/log.py), worst first. TEST_NA is
 * the worst of all as far as the status stack is concerned.
 */
export const JOB_STATUSES = [
  'TEST_NA', 'ABORT', 'ERROR', 'FAIL', 'WARN', 'GOOD', 'BUG', 'ALERT', 'RUNNING', 'NOSTATUS',
] as const;

export type JobStatus = (typeof JOB_STATUSES)[number];
export type StatusCode = 'START' | 'INFO' | JobStatus | `END ${JobStatus}`;

/** A mistake in the calling code (not in user data): bad status, bad field key, END with nothing open... */
export class StatusLogUsageError extends Error {
  override readonly name = 'StatusLogUsageError';
}

export function isJobStatus(s: unknown): s is JobStatus {
  return typeof s === 'string' && (JOB_STATUSES as readonly string[]).includes(s);
}

/** log.is_valid_status: START, INFO, <s> or "END <s>" with s in job_statuses. */
export function isValidStatusCode(s: unknown): s is StatusCode {
  if (typeof s !== 'string') return false;
  if (s === 'START' || s === 'INFO') return true;
  return isJobStatus(s.startsWith('END ') ? s.slice(4) : s);
}

/** Position in job_statuses: lower is worse. */
export function statusRank(s: JobStatus): number {
  return JOB_STATUSES.indexOf(s);
}

/** tko status_lib.is_worse_than. */
export function isWorseThan(a: JobStatus, b: JobStatus): boolean {
  return statusRank(a) < statusRank(b);
}

/** The worse of two statuses (the first one on a tie). */
export function worseOf(a: JobStatus, b: JobStatus): JobStatus {
  return isWorseThan(b, a) ? b : a;
}

export type FieldValue = string | number | bigint;
/** Ordered key/value pairs: an array of pairs or a Map. Plain objects are refused (integer-like keys would be reordered). */
export type FieldsInput = Iterable<readonly [string, FieldValue]>;

export interface StatusEntry {
  status: StatusCode;
  /** A job subdirectory, or null/undefined/'' for none (rendered "----"). */
  subdir?: string | null;
  /** autotest calls it `operation`; null/undefined/'' renders "----". */
  testname?: string | null;
  /** The reason. First line goes on the status line, further lines become "  "-indented continuation lines. */
  message?: string;
  /** Extra fields, written in this order before timestamp= and localtime=. */
  fields?: FieldsInput;
  /** Seconds since the epoch; fractions are dropped (Python's int()). */
  timestamp: number;
}

export const RENDERED_NONE = '----';
export const TIMESTAMP_FIELD = 'timestamp';
export const LOCALTIME_FIELD = 'localtime';

/**
 * Field keys must be what the reference parser reads as a field key
 * (`^(\w+)=(.+)` in Python 2, where \w is [A-Za-z0-9_]).
 */
export const FIELD_KEY_RE = /^[A-Za-z0-9_]+$/;

/**
 * The reference parser's status-line test, `re.search(r"^\t*(\S[^\t]*\t){3}", line)`,
 * with \S as Python 2 reads it on a byte string: anything but space, \t, \n,
 * \r, \f, \v. (JavaScript's and Python 3's \S also exclude Unicode spaces;
 * the sanitiser makes our lines pass under either reading.)
 */
export const STATUS_LINE_RE = /^\t*([^ \t\n\r\f\v][^\t]*\t){3}/;

/** autotest's BAD_CHAR_REGEX: non-space whitespace is forbidden in every field. */
const BAD_CHARS = /[\t\n\r\v\f]/g;
/** What autotest forbids in the first message line once TABs have become spaces. */
const BAD_MESSAGE_CHARS = /[\r\v\f]/g;
/**
 * Leading characters a name may not start with: whitespace as Python 2 sees
 * it (ASCII), as Python 3 sees it (adds \x1c-\x1f, \x85 and Unicode spaces)
 * and as JavaScript sees it (adds \ufeff).
 */
const LEADING_SPACE = /^[\s\x1c-\x1f\x85]+/u;
/**
 * A first message line the reference parser would take for one more
 * `key=value` field (`^(\w+)=(.+)`; \w widened to Unicode letters, digits and
 * marks so that a Python 3 reading is covered too).
 */
const LOOKS_LIKE_FIELD = /^[\p{L}\p{N}\p{M}_]+=./u;

/**
 * A subdir or test name, as it goes between the TABs.
 *
 *  1. CR LF becomes LF; then every TAB, LF, CR, VT and FF becomes one space
 *     (autotest raises ValueError for these).
 *  2. Leading whitespace is removed, so the field starts with a non-space
 *     character and the parser's `^\t*(\S[^\t]*\t){3}` still matches (a
 *     leading space would make the parser skip the whole line).
 *  3. What is left, if empty, is "----" (autotest: `subdir or '----'`).
 *
 * Trailing spaces and everything else are kept as given.
 */
export function sanitiseName(name: string | null | undefined): string {
  if (name === null || name === undefined) return RENDERED_NONE;
  const s = String(name).replace(/\r\n/g, '\n').replace(BAD_CHARS, ' ').replace(LEADING_SPACE, '');
  return s === '' ? RENDERED_NONE : s;
}

/**
 * A field value as written after `key=`.
 *
 *  - numbers: integers in plain decimal (Python's str(int)); other numbers as
 *    JavaScript prints them; bigints in decimal;
 *  - CR LF becomes LF, then TAB, LF, CR, VT and FF each become one space
 *    (autotest raises ValueError);
 *  - an empty value returns undefined and the field is left out: autotest
 *    would write `key=`, which the parser's `^(\w+)=(.+)` does not accept as
 *    a field, so that field and every field after it (timestamp and
 *    localtime included) would land in the reason.
 */
export function sanitiseFieldValue(value: FieldValue): string | undefined {
  let s: string;
  if (typeof value === 'string') s = value;
  else if (typeof value === 'bigint') s = value.toString();
  else if (typeof value === 'number') s = Number.isInteger(value) ? BigInt(value).toString() : String(value);
  else throw new StatusLogUsageError(`field value must be a string, number or bigint, not ${typeof value}`);
  s = s.replace(/\r\n/g, '\n').replace(BAD_CHARS, ' ');
  return s === '' ? undefined : s;
}

/**
 * Split a message into the reason on the status line and the continuation
 * lines, as status_log_entry does (`message.split('\n')`, first line with
 * TAB -> 8 spaces, the rest written as "  " + line).
 *
 * Sanitising (autotest raises ValueError where we change anything, except
 * for the last two points, which autotest writes as given):
 *
 *  - CR LF becomes LF first, so Windows/serial-console output splits cleanly;
 *  - in the first line, every remaining CR, VT and FF becomes one space;
 *  - if the first line would be read by the parser as another `key=value`
 *    field (e.g. `rc=1 from make`), one space is put in front of it, so it
 *    stays the reason instead of being swallowed as a field (or overriding
 *    one such as kernel= or timestamp=);
 *  - in continuation lines, CR, VT and FF become one space too: they are line
 *    breaks to readers that use universal newlines or splitlines(), and a
 *    continuation line must never turn into something that looks like a
 *    status line. TABs in continuation lines are kept, as autotest keeps them.
 */
export function renderMessage(message: string): { first: string; continuation: string[] } {
  const lines = String(message).replace(/\r\n/g, '\n').split('\n');
  let first = lines[0]!.replace(/\t/g, ' '.repeat(8)).replace(BAD_MESSAGE_CHARS, ' ');
  if (LOOKS_LIKE_FIELD.test(first)) first = ' ' + first;
  const continuation = lines.slice(1).map((l) => l.replace(BAD_MESSAGE_CHARS, ' '));
  return { first, continuation };
}

/** Check and render the extra fields (without timestamp/localtime). */
export function renderFields(fields: FieldsInput | undefined): string[] {
  if (fields === undefined || fields === null) return [];
  if (typeof (fields as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== 'function') {
    throw new StatusLogUsageError('fields must be an array of [key, value] pairs or a Map, not a plain object');
  }
  const out: string[] = [];
  const seen = new Set<string>();
  for (const pair of fields) {
    if (!Array.isArray(pair) || pair.length !== 2) {
      throw new StatusLogUsageError('each field must be a [key, value] pair');
    }
    const [key, value] = pair as [unknown, FieldValue];
    if (typeof key !== 'string' || !FIELD_KEY_RE.test(key)) {
      throw new StatusLogUsageError(
        `field key ${JSON.stringify(key)} is not [A-Za-z0-9_]+; the reference parser would not read it as a field`,
      );
    }
    if (key === TIMESTAMP_FIELD || key === LOCALTIME_FIELD) {
      throw new StatusLogUsageError(`field key ${key} is reserved: the writer adds it from the entry's timestamp`);
    }
    if (seen.has(key)) throw new StatusLogUsageError(`field key ${key} given twice`);
    seen.add(key);
    const v = sanitiseFieldValue(value);
    if (v !== undefined) out.push(`${key}=${v}`);
  }
  return out;
}

export interface RenderOptions {
  /** TZ to render localtime= in; default: process.env.TZ at the time of the call. */
  tz?: string;
}

/**
 * The exact text autotest appends to status.log for this entry at this
 * indent (what `status_logger.record_entry` prints, i.e. including the final
 * newline), continuation lines included.
 *
 * Note that indent is the rendered indent: for an END entry that is the depth
 * of the level being closed minus one, as status_logger.render_entry computes.
 */
export function renderEntry(entry: StatusEntry, indent: number, options: RenderOptions = {}): string {
  if (!isValidStatusCode(entry.status)) {
    throw new StatusLogUsageError(`status code ${JSON.stringify(entry.status)} is not valid`);
  }
  if (!Number.isInteger(indent) || indent < 0) {
    throw new StatusLogUsageError(`indent must be a non-negative integer, not ${indent}`);
  }
  if (typeof entry.timestamp !== 'number' || !Number.isFinite(entry.timestamp)) {
    throw new StatusLogUsageError(`timestamp must be a finite number of seconds, not ${entry.timestamp}`);
  }
  const timestamp = Math.trunc(entry.timestamp);
  const { first, continuation } = renderMessage(entry.message ?? '');
  const parts = [
    entry.status,
    sanitiseName(entry.subdir),
    sanitiseName(entry.testname),
    ...renderFields(entry.fields),
    `${TIMESTAMP_FIELD}=${timestamp}`,
    `${LOCALTIME_FIELD}=${formatLocaltime(timestamp, options.tz ?? process.env.TZ)}`,
    first,
  ];
  let out = '\t'.repeat(indent) + parts.join('\t') + '\n';
  for (const line of continuation) out += '  ' + line + '\n';
  return out;
}
