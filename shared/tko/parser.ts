/**
 * autotest's status.log parser (TKO, status_version 1), reimplemented so that
 * a log gives exactly the tests, statuses and reasons the reference gives,
 * quirks included. The rules, with the reference's own names, are in
 * /work/shared/docs/status-log-v1.md (autotest/autotest tko/parsers/version_1.py
 * `state_iterator`, tko/status_lib.py, tko/parsers/version_0.py `status_line`,
 * tko/utils.py `drop_redundant_messages`). Comments below point at the step
 * of that document each piece implements.
 *
 * What the reference returns is a list of test objects in which the same
 * object may appear several times: a test is listed RUNNING when its START is
 * read and the same object is re-initialised when it ends (tko/parse.py
 * removes the duplicates before writing to the database). Here:
 *
 *   - feed() and end() return each test once, when it is finished, in the
 *     order the tests finish; end() returns, after the tests the final
 *     END ABORTs finish, the records the reference leaves RUNNING (see the
 *     CLIENT_JOB quirk) and SERVER_JOB last;
 *   - `sequences` gives, for each test the last call returned, its position
 *     in the reference's de-duplicated list: SERVER_JOB is 0 (it is listed
 *     first, when parsing starts), then records in order of first
 *     appearance (a test at its START line, CLIENT_JOB.<n> at the client's
 *     START, a test made of one status line at that line). A record the
 *     reference re-initialises after it had finished (only possible for
 *     CLIENT_JOB.<n>, see finishTest) is returned again with the same number;
 *   - parseStatusLogText() returns the de-duplicated list in the reference's
 *     order, each entry in its final state: the listing the document's worked
 *     example shows.
 *
 * Where the reference fails with an exception, a StatusLogParseError says
 * which line and why; nothing of the job is returned (the reference writes
 * nothing to the database either).
 */
import { JOB_STATUSES, type JobStatus } from '../statuslog/entry.js';
import { convertKeyvalValue, type KeyvalValue } from '../statuslog/keyval.js';
import { formatLocaltime } from '../statuslog/localtime.js';
import { KernelPatchError, UNKNOWN_KERNEL, kernelFromFields } from './kernel.js';
import type { KernelId, TkoTest } from './types.js';

// Positions in JOB_STATUSES: lower is worse (TEST_NA, 0, is the worst).
const R_ABORT = 1;
const R_FAIL = 3;
const R_GOOD = 5;
const R_RUNNING = 8;
const R_NOSTATUS = 9;

// Line types, as codes: a STATUS line is its status's rank (0..9), an END
// line 200 + the rank.
const T_START = 100;
const T_INFO = 101;
const T_END = 200;

/** The rank of the status spelt by text[s, e), or -1. */
function statusRank(t: string, s: number, e: number): number {
  // Spelt out: a few charCodeAt comparisons cost less than a slice.
  const c0 = t.charCodeAt(s);
  const c1 = t.charCodeAt(s + 1);
  const c2 = t.charCodeAt(s + 2);
  switch (e - s) {
    case 3: // BUG
      return c0 === 66 && c1 === 85 && c2 === 71 ? 6 : -1;
    case 4: {
      const c3 = t.charCodeAt(s + 3);
      if (c0 === 71) return c1 === 79 && c2 === 79 && c3 === 68 ? R_GOOD : -1; // GOOD
      if (c0 === 70) return c1 === 65 && c2 === 73 && c3 === 76 ? R_FAIL : -1; // FAIL
      if (c0 === 87) return c1 === 65 && c2 === 82 && c3 === 78 ? 4 : -1; // WARN
      return -1;
    }
    case 5: {
      const c3 = t.charCodeAt(s + 3);
      const c4 = t.charCodeAt(s + 4);
      if (c0 === 69) return c1 === 82 && c2 === 82 && c3 === 79 && c4 === 82 ? 2 : -1; // ERROR
      if (c0 !== 65) return -1;
      if (c1 === 66) return c2 === 79 && c3 === 82 && c4 === 84 ? R_ABORT : -1; // ABORT
      return c1 === 76 && c2 === 69 && c3 === 82 && c4 === 84 ? 7 : -1; // ALERT
    }
    case 7:
      if (c0 === 84) return t.slice(s, e) === 'TEST_NA' ? 0 : -1;
      return t.slice(s, e) === 'RUNNING' ? R_RUNNING : -1;
    case 8:
      return t.slice(s, e) === 'NOSTATUS' ? R_NOSTATUS : -1;
    default:
      return -1;
  }
}

/** The line type code of the status word text[s, e), or -1 for a word the reference rejects. */
function wordCode(text: string, s: number, e: number): number {
  const c = text.charCodeAt(s);
  if (
    c === 83 /* S */ &&
    e - s === 5 &&
    text.charCodeAt(s + 1) === 84 &&
    text.charCodeAt(s + 2) === 65 &&
    text.charCodeAt(s + 3) === 82 &&
    text.charCodeAt(s + 4) === 84
  ) {
    return T_START;
  }
  if (c === 73 /* I */ && e - s === 4 && text.slice(s, e) === 'INFO') return T_INFO;
  const isEnd =
    c === 69 /* E */ &&
    e - s > 4 &&
    text.charCodeAt(s + 1) === 78 /* N */ &&
    text.charCodeAt(s + 2) === 68 /* D */ &&
    text.charCodeAt(s + 3) === 32;
  if (isEnd) {
    const rank = statusRank(text, s + 4, e);
    return rank < 0 ? -1 : T_END + rank;
  }
  return statusRank(text, s, e);
}

/** Python 2's \w on a byte string, for the field-key test `^(\w+)=(.+)`. */
const WORD_CHAR = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  WORD_CHAR[c] = /[A-Za-z0-9_]/.test(ch) ? 1 : 0;
}

/** Python 2's \s on a byte string: space, \t, \n, \v, \f, \r. */
function isPySpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

/** Which exception the reference parser dies with on this input. */
export type ReferenceFailure = 'AssertionError' | 'ValueError' | 'TypeError' | 'AttributeError' | 'UnboundLocalError';

/**
 * A status.log (or its job keyval) that autotest's parser refuses: it raises
 * an exception and the job is not parsed at all.
 */
export class StatusLogParseError extends Error {
  override readonly name = 'StatusLogParseError';
  constructor(
    /** What is wrong, without the location. */
    readonly detail: string,
    /** 1-based line of the status.log; null when the problem is not on one line (end of the log, the job keyval). */
    readonly line: number | null,
    readonly file: string | undefined,
    /** What to do about it. */
    readonly hint: string,
    /** The exception autotest's parser raises here. */
    readonly referenceError: ReferenceFailure,
  ) {
    super(`${file ?? 'status.log'}${line === null ? '' : `:${line}`}: ${detail}`);
  }
}

export interface StatusLogParserOptions {
  /**
   * The job's keyval (the merged job keyval files, values as read_keyval
   * gives them or as written). Used: aborted_by and aborted_on (the reason
   * of the END ABORTs added at the end of the log), job_started and
   * job_finished (SERVER_JOB's times).
   */
  jobKeyval?: ReadonlyMap<string, KeyvalValue>;
  /**
   * SERVER_JOB's status, from the job's .autoserv_execute (see
   * results-dir.ts serverJobStatusOf). Default ABORT: what the reference
   * reports when it finds no .autoserv_execute.
   */
  serverJobStatus?: JobStatus;
  /**
   * Keep no test objects and build no reasons: feed() and end() return
   * nothing and `summary` has the counts. For very large logs.
   */
  summaryOnly?: boolean;
  /** Named in error messages. */
  file?: string;
  /** TZ for the date in "Job aborted by <user> at <date>" (default: process.env.TZ, as Python's localtime). */
  tz?: string;
}

export interface StatusLogSummary {
  /** Physical lines read. */
  lines: number;
  /** Entries in the reference's de-duplicated list of tests, SERVER_JOB and CLIENT_JOB.<n> included. */
  tests: number;
  /** Those entries by final status (RUNNING for the records the reference never finishes). */
  byStatus: Record<JobStatus, number>;
}

/** A record the reference creates RUNNING and re-initialises in place when the test ends. */
interface RunningRecord {
  seq: number;
  subdir: string | null;
  /** Never null in practice: a test level's START has a name or a subdir, or it would be a client job's. */
  testname: string | null;
  reason: string;
  kernel: KernelId;
  started: number | null;
  /** Rank this record was last counted under in the summary, -1 while it is RUNNING. */
  counted: number;
}

const HINT_FIX_LINE = "correct or delete that line; autotest's TKO parser rejects the whole log because of it";

const NO_REASONS: readonly string[] = [];
const SOME_NAME = 'x';

// timestamp= and localtime= are on every line any writer writes; these
// spelt-out tests are the cheapest way V8 offers to recognise them.
function isTimestampEq(t: string, p: number): boolean {
  return (
    t.charCodeAt(p) === 116 &&
    t.charCodeAt(p + 9) === 61 &&
    t.charCodeAt(p + 1) === 105 &&
    t.charCodeAt(p + 2) === 109 &&
    t.charCodeAt(p + 3) === 101 &&
    t.charCodeAt(p + 4) === 115 &&
    t.charCodeAt(p + 5) === 116 &&
    t.charCodeAt(p + 6) === 97 &&
    t.charCodeAt(p + 7) === 109 &&
    t.charCodeAt(p + 8) === 112
  );
}

function isLocaltimeEq(t: string, p: number): boolean {
  return (
    t.charCodeAt(p) === 108 &&
    t.charCodeAt(p + 9) === 61 &&
    t.charCodeAt(p + 1) === 111 &&
    t.charCodeAt(p + 2) === 99 &&
    t.charCodeAt(p + 3) === 97 &&
    t.charCodeAt(p + 4) === 108 &&
    t.charCodeAt(p + 5) === 116 &&
    t.charCodeAt(p + 6) === 105 &&
    t.charCodeAt(p + 7) === 109 &&
    t.charCodeAt(p + 8) === 101
  );
}

/** Ten decimal digits at t[p..p+9] as a number, or -1. */
function tenDigits(t: string, p: number): number {
  const d0 = t.charCodeAt(p) - 48;
  const d1 = t.charCodeAt(p + 1) - 48;
  const d2 = t.charCodeAt(p + 2) - 48;
  const d3 = t.charCodeAt(p + 3) - 48;
  const d4 = t.charCodeAt(p + 4) - 48;
  const d5 = t.charCodeAt(p + 5) - 48;
  const d6 = t.charCodeAt(p + 6) - 48;
  const d7 = t.charCodeAt(p + 7) - 48;
  const d8 = t.charCodeAt(p + 8) - 48;
  const d9 = t.charCodeAt(p + 9) - 48;
  // Any character outside '0'..'9' makes its digit, taken unsigned, larger than 9.
  if (
    d0 >>> 0 > 9 ||
    d1 >>> 0 > 9 ||
    d2 >>> 0 > 9 ||
    d3 >>> 0 > 9 ||
    d4 >>> 0 > 9 ||
    d5 >>> 0 > 9 ||
    d6 >>> 0 > 9 ||
    d7 >>> 0 > 9 ||
    d8 >>> 0 > 9 ||
    d9 >>> 0 > 9
  ) {
    return -1;
  }
  return ((((d0 * 10 + d1) * 10 + d2) * 10 + d3) * 10 + d4) * 100000 + (((d5 * 10 + d6) * 10 + d7) * 10 + d8) * 10 + d9;
}

export class StatusLogParser {
  private readonly file: string | undefined;
  private readonly summaryOnly: boolean;
  private readonly serverJobStatus: JobStatus;
  private readonly tz: string | undefined;
  private readonly abortedBy: KeyvalValue | undefined;
  private readonly abortedOn: number | null;
  private readonly jobStarted: number | null;
  private readonly jobFinished: number | null;

  // Reference state (document: "State").
  /** status_stack, as ranks; size() is length - 1. */
  private readonly stack: number[] = [R_NOSTATUS];
  private minStackSize = 0;
  private currentStatus = R_NOSTATUS;
  private currentReason: string | null = null;
  private readonly subdirStack: Array<string | null> = [null];
  private readonly startedStack: Array<number | null> = [null];
  private runningTest: RunningRecord | null = null;
  /** running_reasons, after drop_redundant_messages. */
  private runningReasons: readonly string[] = NO_REASONS;
  /** The last CLIENT_JOB record started (the reference's running_client), if any was. */
  private runningClient: RunningRecord | null = null;
  private currentKernel: KernelId = UNKNOWN_KERNEL;
  private jobCount = 0;
  private bootCount = 0;
  private serverJobReason = '';

  // Bookkeeping.
  private nextSeq = 1;
  /** RUNNING records that can no longer be finished (the reference dropped its reference to them). */
  private readonly orphans: RunningRecord[] = [];
  private pending = '';
  private lineNo = 0;
  private ended = false;
  private out: TkoTest[] = [];
  private outSeq: number[] = [];
  private lastSeq: number[] = [];
  private readonly counts: number[] = new Array<number>(JOB_STATUSES.length).fill(0);
  private countTotal = 0;
  /** The last line the reference parsed as a status line (its `line`): text and timestamp= bounds; null after a non-status line. */
  private lastText: string | null = null;
  private lastTsStart = -1;
  private lastTsEnd = -1;
  /** The physical line being processed (synthetic lines report the line that caused them). */
  private currentLineNo: number | null = null;
  /** Where text.indexOf('\t') last searched from and what it found, so that tab-less lines are not searched again and again. */
  private tabText = '';
  private tabFrom = 0;
  private tabAt = 0;

  // The line being processed, as scan() leaves it: positions in `text`, the
  // chunk that holds the line (so that a line costs no string of its own).
  private text = '';
  private lineEnd = 0;
  private indent = 0;
  private code = 0;
  private subdirStart = 0;
  private subdirEnd = 0;
  private nameStart = 0;
  private nameEnd = 0;
  private fieldsStart = 0;
  private reasonStart = 0;
  private tsStart = -1;
  private tsEnd = -1;

  constructor(options: StatusLogParserOptions = {}) {
    this.file = options.file;
    this.summaryOnly = options.summaryOnly === true;
    this.serverJobStatus = options.serverJobStatus ?? 'ABORT';
    if (!JOB_STATUSES.includes(this.serverJobStatus)) {
      throw new TypeError(`serverJobStatus must be one of ${JOB_STATUSES.join(', ')}, not ${String(this.serverJobStatus)}`);
    }
    this.tz = options.tz;
    const kv = options.jobKeyval ?? new Map<string, KeyvalValue>();
    // tko/parsers/version_0.py job.load_from_dir: these are read, and their
    // int() taken, when the job is loaded, before any line is parsed.
    const read = (key: string): KeyvalValue | undefined => {
      const v = kv.get(key);
      return typeof v === 'string' ? convertKeyvalValue(v) : v;
    };
    this.abortedBy = read('aborted_by');
    this.abortedOn = this.keyvalTimestamp('aborted_on', read('aborted_on'));
    this.jobStarted = this.keyvalTimestamp('job_started', read('job_started'));
    this.jobFinished = this.keyvalTimestamp('job_finished', read('job_finished'));
  }

  /** Counts of the tests finished so far (final once end() has returned). */
  get summary(): StatusLogSummary {
    const byStatus = {} as Record<JobStatus, number>;
    JOB_STATUSES.forEach((s, i) => (byStatus[s] = this.counts[i]!));
    return { lines: this.lineNo, tests: this.countTotal, byStatus };
  }

  /** For each test the last feed()/end() returned, index for index: its position in the reference's list (see the module comment). */
  get sequences(): readonly number[] {
    return this.lastSeq;
  }

  /**
   * Parse the complete lines in `chunk` (with what an earlier chunk left
   * unfinished) and return the tests they finish. A last line without its
   * newline waits for the next chunk or end().
   */
  feed(chunk: string): TkoTest[] {
    if (this.ended) throw new Error('StatusLogParser.feed() called after end()');
    const n = chunk.length;
    let pos = 0;
    if (this.pending !== '') {
      const nl = chunk.indexOf('\n');
      if (nl < 0) {
        this.pending += chunk;
        return this.flush();
      }
      const line = cleanLine(this.pending + chunk.slice(0, nl));
      this.pending = '';
      this.lineNo++;
      this.handle(line, 0, line.length, this.lineNo);
      pos = nl + 1;
    }
    // status_lib.clean_raw_line deletes "\r\x00"; a chunk without NUL needs no look at all.
    const mayNeedCleaning = chunk.indexOf('\x00', pos) >= 0;
    while (pos < n) {
      const nl = chunk.indexOf('\n', pos);
      if (nl < 0) {
        this.pending = chunk.slice(pos);
        break;
      }
      this.lineNo++;
      if (mayNeedCleaning && chunk.lastIndexOf('\r\x00', nl) >= pos) {
        const line = cleanLine(chunk.slice(pos, nl));
        this.handle(line, 0, line.length, this.lineNo);
      } else {
        this.handle(chunk, pos, nl, this.lineNo);
      }
      pos = nl + 1;
    }
    return this.flush();
  }

  /**
   * No more input: parse a last line that has no newline, close every level
   * still open with END ABORT (document step 7), and finish SERVER_JOB
   * (step 8). Returns the tests finished now, the records the reference
   * leaves RUNNING, and SERVER_JOB last.
   */
  end(): TkoTest[] {
    if (this.ended) throw new Error('StatusLogParser.end() called twice');
    this.ended = true;
    if (this.pending !== '') {
      const line = cleanLine(this.pending);
      this.pending = '';
      this.lineNo++;
      this.handle(line, 0, line.length, this.lineNo);
    }
    this.currentLineNo = null;
    while (this.stack.length - 1 > 0) {
      let reason: string;
      if (isTruthy(this.abortedBy)) {
        if (this.abortedOn === null) {
          throw this.error(
            "the job keyval has aborted_by but no aborted_on; autotest's parser needs both to word the END ABORTs " +
              'it adds for the levels still open at the end of the log',
            'AttributeError',
            'add aborted_on=<seconds since the epoch> to the job keyval, or remove aborted_by',
            null,
          );
        }
        reason = `Job aborted by ${pyStr(this.abortedBy)} at ${formatLocaltime(this.abortedOn, this.tz)}`;
      } else {
        reason = 'Job aborted unexpectedly';
      }
      // As in the reference: the reason first, then the last line's timestamp.
      if (this.lastText === null) {
        throw this.error(
          'the log ends with levels still open (a START without its END) and its last line is not a status line; ' +
            "autotest's parser takes the timestamp for the END ABORTs it adds from the last line, finds none and fails",
          'AttributeError',
          'end the log with a status line (e.g. the END of the open level), or remove the trailing non-status lines',
          this.lineNo,
        );
      }
      const timestamp = this.lastTsStart >= 0 ? this.lastText.slice(this.lastTsStart, this.lastTsEnd) : undefined;
      const subdirs = this.subdirStack.slice();
      const aborts: string[] = [];
      for (let i = this.stack.length - 2; i >= 0; i--) {
        const subdir = subdirs.length > 0 ? subdirs.pop()! : null;
        aborts.push(cleanLine(dummyAbort(i, subdir, timestamp, reason)));
      }
      for (const line of aborts) this.handle(line, 0, line.length, null);
    }
    // Records listed RUNNING that nothing finished: they stay RUNNING.
    const left = this.orphans.slice();
    if (this.runningClient !== null && this.runningClient.counted < 0) left.push(this.runningClient);
    if (this.runningTest !== null) left.push(this.runningTest);
    left.sort((a, b) => a.seq - b.seq);
    for (const rec of left) {
      this.emit(rec.seq, rec.subdir, rec.testname ?? '', R_RUNNING, rec.reason, rec.kernel, rec.started, null, null);
    }
    // parse_test(job, "----", "SERVER_JOB", job.exit_status(), running_job.reason, ...)
    this.emit(
      0,
      '----',
      'SERVER_JOB',
      JOB_STATUSES.indexOf(this.serverJobStatus),
      this.serverJobReason,
      this.currentKernel,
      this.jobStarted,
      this.jobFinished,
      null,
    );
    return this.flush();
  }

  private flush(): TkoTest[] {
    const out = this.out;
    this.lastSeq = this.outSeq;
    this.out = [];
    this.outSeq = [];
    return out;
  }

  private error(
    detail: string,
    referenceError: ReferenceFailure,
    hint: string,
    line: number | null = this.currentLineNo,
  ): StatusLogParseError {
    return new StatusLogParseError(detail, line, this.file, hint, referenceError);
  }

  /**
   * get_timestamp on a keyval value: int(value), then datetime.fromtimestamp.
   * Missing: null.
   */
  private keyvalTimestamp(key: string, value: KeyvalValue | undefined): number | null {
    if (value === undefined) return null;
    let t: number | null;
    if (typeof value === 'bigint') t = Number(value);
    else if (typeof value === 'number') t = Math.trunc(value);
    else t = pyIntOrNull(value);
    if (t === null || !fromTimestampOk(t)) {
      throw this.error(
        `the job keyval's ${key}=${String(value)} is not a usable time (seconds since the epoch); ` +
          "autotest's parser fails on it when it loads the job",
        'ValueError',
        `correct ${key} in the job's keyval file`,
        null,
      );
    }
    return t;
  }

  /** text.indexOf('\t', from), or -1 if the first TAB is at or past `end`. */
  private tab(text: string, from: number, end: number): number {
    let t: number;
    if (text === this.tabText && from >= this.tabFrom && from <= this.tabAt) {
      t = this.tabAt;
    } else {
      t = text.indexOf('\t', from);
      if (t < 0) t = text.length;
      this.tabText = text;
      this.tabFrom = from;
      this.tabAt = t;
    }
    return t < end ? t : -1;
  }

  /**
   * Split the line text[start, end) the way status_line.parse_line does.
   * Returns false for a line that is not a status line (document:
   * "Status-line test"); throws for a status word the reference asserts on.
   */
  private scan(text: string, start: number, end: number): boolean {
    let p = start;
    while (p < end && text.charCodeAt(p) === 9) p++;
    // ^\t*(\S[^\t]*\t){3}: three fields, each starting with a non-space and ending in a TAB.
    const s0 = p;
    if (p >= end || isPySpace(text.charCodeAt(p))) return false;
    const t0 = this.tab(text, p, end);
    if (t0 < 0) return false;
    p = t0 + 1;
    if (p >= end || isPySpace(text.charCodeAt(p))) return false;
    // Only the first search needs the memo: a line that has a TAB is searched from inside itself.
    const t1 = text.indexOf('\t', p);
    if (t1 < 0 || t1 >= end) return false;
    p = t1 + 1;
    if (p >= end || isPySpace(text.charCodeAt(p))) return false;
    const t2 = text.indexOf('\t', p);
    if (t2 < 0 || t2 >= end) return false;

    const code = wordCode(text, s0, t0);
    if (code < 0) {
      const word = text.slice(s0, t0);
      throw this.error(
        `${JSON.stringify(word)} is not a status: a status line starts with START, INFO, END <status> or <status>, ` +
          `<status> being one of ${JOB_STATUSES.join(', ')}; autotest's parser stops at this line`,
        'AssertionError',
        HINT_FIX_LINE,
      );
    }
    this.text = text;
    this.lineEnd = end;
    this.indent = s0 - start;
    this.code = code;
    this.subdirStart = t0 + 1;
    this.subdirEnd = t1;
    this.nameStart = t1 + 1;
    this.nameEnd = t2;

    // Optional fields: parts from the fourth on, while each is ^(\w+)=(.+).
    // The first part that is not, and all after it, are the reason.
    let f = t2 + 1;
    this.fieldsStart = f;
    this.tsStart = -1;
    for (;;) {
      let e = text.indexOf('\t', f);
      if (e < 0 || e > end) e = end;
      // k: the '=' after a \w+ key, or -1.
      let k: number;
      const c0 = text.charCodeAt(f);
      if (c0 === 116 /* t */ && isTimestampEq(text, f)) {
        k = f + 9;
        // A later duplicate key wins.
        this.tsStart = f + 10;
        this.tsEnd = e;
      } else if (c0 === 108 /* l */ && isLocaltimeEq(text, f)) {
        k = f + 9;
      } else {
        k = f;
        while (k < e) {
          const c = text.charCodeAt(k);
          if (c >= 128 || WORD_CHAR[c] === 0) break;
          k++;
        }
        if (k === f || k >= e || text.charCodeAt(k) !== 61 /* = */) k = -1;
      }
      if (k < 0 || k + 1 >= e) {
        // Not a field after all (for timestamp=, an empty value): the reason starts here.
        if (k >= 0 && this.tsStart === f + 10) this.tsStart = this.prevTsStart(text, this.fieldsStart, f);
        this.reasonStart = f;
        break;
      }
      if (e === end) {
        this.reasonStart = end;
        break;
      }
      f = e + 1;
    }
    return true;
  }

  /** The last timestamp= field in text[from, to) (fields only), for the rare "timestamp=" with nothing after it. */
  private prevTsStart(text: string, from: number, to: number): number {
    let found = -1;
    let f = from;
    while (f < to) {
      let e = text.indexOf('\t', f);
      if (e < 0 || e > to) e = to;
      if (isTimestampEq(text, f)) {
        found = f + 10;
        this.tsEnd = e;
      }
      f = e + 1;
    }
    return found;
  }

  /** The key=value fields of the line scan() last split (later duplicates replacing earlier ones). */
  private fields(): Map<string, string> {
    const text = this.text;
    const map = new Map<string, string>();
    let f = this.fieldsStart;
    while (f < this.reasonStart) {
      let e = text.indexOf('\t', f);
      if (e < 0 || e > this.reasonStart) e = Math.min(this.lineEnd, this.reasonStart);
      const eq = text.indexOf('=', f);
      map.set(text.slice(f, eq), text.slice(eq + 1, e));
      f = e + 1;
    }
    return map;
  }

  private isNone(start: number, end: number): boolean {
    const text = this.text;
    return (
      end - start === 4 &&
      text.charCodeAt(start) === 45 &&
      text.charCodeAt(start + 1) === 45 &&
      text.charCodeAt(start + 2) === 45 &&
      text.charCodeAt(start + 3) === 45
    );
  }

  /** line.get_timestamp(): int() of timestamp=, as seconds; null if the line has none. */
  private timestamp(): number | null {
    if (this.tsStart < 0) return null;
    const text = this.text;
    const s = this.tsStart;
    const e = this.tsEnd;
    // Every timestamp from 2001 to 2286 has ten digits.
    let t = e - s === 10 ? tenDigits(text, s) : -1;
    if (t < 0) {
      const parsed = pyIntOrNull(text.slice(s, e));
      if (parsed === null) {
        throw this.error(
          `timestamp=${text.slice(s, e)} is not a whole number of seconds; autotest's parser fails on it (int())`,
          'ValueError',
          HINT_FIX_LINE,
        );
      }
      t = parsed;
    }
    if (t > MAX_TIMESTAMP || t < MIN_TIMESTAMP) {
      throw this.error(
        `timestamp=${text.slice(s, e)} is outside the years 1 to 9999; autotest's parser fails on it (datetime.fromtimestamp)`,
        'ValueError',
        HINT_FIX_LINE,
      );
    }
    return t;
  }

  private reason(): string {
    return this.reasonStart >= this.lineEnd ? '' : this.text.slice(this.reasonStart, this.lineEnd);
  }

  private lineKernel(): KernelId {
    try {
      return kernelFromFields(this.fields());
    } catch (e) {
      if (!(e instanceof KernelPatchError)) throw e;
      throw this.error(`${e.message}; autotest's parser fails on it (TypeError)`, 'TypeError', HINT_FIX_LINE);
    }
  }

  /** The cleaned line text[start, end). `lineNo` null for the END ABORTs added at the end of the log. */
  private handle(text: string, start: number, end: number, lineNo: number | null): void {
    this.currentLineNo = lineNo;
    for (;;) {
      if (!this.scan(text, start, end)) {
        this.lastText = null;
        return;
      }
      this.lastText = text;
      this.lastTsStart = this.tsStart;
      this.lastTsEnd = this.tsEnd;

      // Step 1: the indent check.
      const code = this.code;
      const size = this.stack.length - 1;
      const expected = code >= T_END ? size - 1 : size;
      if (this.indent < expected) {
        // Put the line back behind a synthetic END ABORT of the innermost level, then read it again.
        const reason = code === T_INFO ? 'None' : this.reason();
        const timestamp = this.tsStart >= 0 ? text.slice(this.tsStart, this.tsEnd) : undefined;
        const abort = cleanLine(dummyAbort(size - 1, this.subdirStack[this.subdirStack.length - 1]!, timestamp, reason));
        this.handle(abort, 0, abort.length, lineNo);
        continue;
      }
      if (this.indent > expected) return;

      if (code === T_START) this.onStart();
      else if (code === T_INFO) this.onInfo();
      else if (code >= T_END) this.onEnd(code - T_END);
      else this.onStatus(code);
      return;
    }
  }

  /**
   * A name field: null for "----", else its text; in summary-only mode a
   * placeholder, because there names only decide between None and not.
   */
  private name(start: number, end: number): string | null {
    if (this.isNone(start, end)) return null;
    return this.summaryOnly ? SOME_NAME : this.text.slice(start, end);
  }

  /** Step 2. */
  private onStart(): void {
    const stack = this.stack;
    stack.push(R_NOSTATUS);
    const started = this.timestamp();
    const subdir = this.name(this.subdirStart, this.subdirEnd);
    const size = stack.length - 1;
    if (this.runningTest === null) {
      const noName = this.isNone(this.nameStart, this.nameEnd);
      if (subdir === null && noName) {
        // A client job: tests are counted from this depth on.
        this.minStackSize = size;
        const previous = this.runningClient;
        if (previous !== null && previous.counted < 0) this.orphans.push(previous);
        this.runningClient = {
          seq: this.nextSeq++,
          subdir: null,
          testname: `CLIENT_JOB.${this.jobCount}`,
          reason: '',
          kernel: this.currentKernel,
          started,
          counted: -1,
        };
      } else if (size === this.minStackSize + 1) {
        const reason = this.summaryOnly ? '' : this.reason();
        this.runningReasons = reason === '' ? NO_REASONS : [reason];
        this.runningTest = {
          seq: this.nextSeq++,
          subdir,
          testname: noName ? null : this.name(this.nameStart, this.nameEnd),
          reason,
          kernel: this.currentKernel,
          started,
          counted: -1,
        };
      }
    }
    this.startedStack.push(started);
    this.subdirStack.push(subdir);
  }

  /** Step 3. */
  private onInfo(): void {
    if (this.fieldsStart >= this.reasonStart) return;
    const fields = this.fields();
    if (fields.has('kernel')) this.currentKernel = this.lineKernel();
    const abortReason = fields.get('job_abort_reason');
    if (abortReason !== undefined) this.serverJobReason = abortReason;
  }

  /** Step 4. */
  private onStatus(status: number): void {
    const stack = this.stack;
    const top = stack.length - 1;
    const noSubdir = this.isNone(this.subdirStart, this.subdirEnd);
    if (!noSubdir && top > this.minStackSize) {
      this.subdirStack[this.subdirStack.length - 1] = this.name(this.subdirStart, this.subdirEnd);
    }
    if (status < stack[top]!) stack[top] = status;
    if (status <= this.currentStatus) {
      if (!this.summaryOnly && this.reasonStart < this.lineEnd) {
        const reason = this.reason();
        if (this.runningTest !== null) {
          this.runningTest.reason = this.addRunningReason(reason);
          this.currentReason = this.runningTest.reason;
        } else {
          this.currentReason = reason;
        }
      }
      this.currentStatus = stack[top]!;
    }
    const finished = this.timestamp();
    const noName = this.isNone(this.nameStart, this.nameEnd);
    if (noSubdir && noName) return;
    if (stack.length - 1 > this.minStackSize) return;
    this.finishTest(this.name(this.subdirStart, this.subdirEnd), this.name(this.nameStart, this.nameEnd), null, finished);
  }

  /** Step 5. */
  private onEnd(status: number): void {
    const stack = this.stack;
    const noSubdir = this.isNone(this.subdirStart, this.subdirEnd);
    const noName = this.isNone(this.nameStart, this.nameEnd);
    let subdir: string | null = null;
    if (noSubdir && noName && this.runningTest === null) {
      // The end of a client job.
      this.minStackSize = stack.length - 2;
      this.subdirStack.pop();
    } else {
      // The END's own names are not used for the subdir: the level's is.
      subdir = this.subdirStack.pop()!;
      const parent = this.subdirStack.length - 1;
      if (!this.subdirStack[parent] && stack.length - 1 > this.minStackSize) this.subdirStack[parent] = subdir;
    }
    let top = stack.length - 1;
    if (status < stack[top]!) stack[top] = status;
    this.currentStatus = stack.pop()!;
    if (stack.length === 0) stack.push(R_NOSTATUS);
    top = stack.length - 1;
    if (top > this.minStackSize) {
      if (this.currentStatus < stack[top]!) stack[top] = this.currentStatus;
      this.currentStatus = stack[top]!;
    }
    const started = this.startedStack.pop() ?? null;
    const finished = this.timestamp();
    let testname: string | null = null;
    // 'reboot': a reboot that did not fail names the kernel it came up with.
    if (!noName && this.nameEnd - this.nameStart === 6 && this.text.startsWith('reboot', this.nameStart)) {
      if (this.currentStatus > R_FAIL) this.currentKernel = this.lineKernel();
      testname = subdir === null ? `boot.${this.bootCount}` : 'reboot';
    }
    if (top > this.minStackSize) return;
    if (testname === null && !noName) testname = this.name(this.nameStart, this.nameEnd);
    this.finishTest(subdir, testname, started, finished);
  }

  /** Step 6: a test has just finished (the stack is back at the client's depth or above). */
  private finishTest(subdir: string | null, testname: string | null, started: number | null, finished: number | null): void {
    let name = testname ?? subdir;
    let rec = this.runningTest;
    if (name === null) {
      name = `CLIENT_JOB.${this.jobCount}`;
      // The reference re-initialises its running_client object: the last
      // client job started, even one that already finished. A test that was
      // running is dropped and stays RUNNING.
      if (this.runningClient === null) {
        throw this.error(
          'this END closes a level that has neither a test name nor a subdir, and no client job (START ---- ----) was ever started; ' +
            "autotest's parser fails here (it has no CLIENT_JOB record to finish)",
          'UnboundLocalError',
          'give the END line the name of the level it closes, or start a client job first',
        );
      }
      if (rec !== null) this.orphans.push(rec);
      rec = this.runningClient;
      this.jobCount++;
      // A client job has not failed because some of its tests did.
      if (this.currentStatus > R_ABORT) this.currentStatus = R_GOOD;
    }
    let reason = '';
    if (!this.summaryOnly) {
      if (!this.currentReason) this.currentReason = this.reason();
      reason = this.currentReason;
    }
    const seq = rec === null ? this.nextSeq++ : rec.seq;
    this.emit(seq, subdir, name, this.currentStatus, reason, this.currentKernel, started, finished, rec);
    this.runningTest = null;
    this.currentStatus = R_NOSTATUS;
    this.currentReason = null;
    if (name.length > 5 && name.charCodeAt(0) === 98 /* b */ && name === `boot.${this.bootCount}`) this.bootCount++;
  }

  /** running_reasons.add(reason), drop_redundant_messages, then ", ".join(sorted(...)). */
  private addRunningReason(reason: string): string {
    const reasons = this.runningReasons;
    // Kept: every reason that no other one contains.
    if (!reasons.some((r) => r.includes(reason))) {
      const kept = reasons.filter((r) => !reason.includes(r));
      kept.push(reason);
      this.runningReasons = kept;
    }
    return this.runningReasons.length === 1
      ? this.runningReasons[0]!
      : [...this.runningReasons].sort(compareCodePoints).join(', ');
  }

  private emit(
    seq: number,
    subdir: string | null,
    testname: string,
    rank: number,
    reason: string,
    kernel: KernelId,
    started: number | null,
    finished: number | null,
    rec: RunningRecord | null,
  ): void {
    if (rec !== null) {
      if (rec.counted >= 0) {
        this.counts[rec.counted]!--;
        this.countTotal--;
      }
      rec.counted = rank;
    }
    this.counts[rank]!++;
    this.countTotal++;
    if (this.summaryOnly) return;
    this.out.push({
      testname: detach(testname),
      status: JOB_STATUSES[rank]!,
      reason: detach(reason),
      subdir: subdir === null ? null : detach(subdir),
      kernel,
      started,
      finished,
    });
    this.outSeq.push(seq);
  }
}

/**
 * Parse a whole status.log and return the tests as the reference lists them
 * (de-duplicated, in order of first appearance, SERVER_JOB first), each in
 * its final state.
 */
export function parseStatusLogText(text: string, options: StatusLogParserOptions = {}): TkoTest[] {
  const parser = new StatusLogParser({ ...options, summaryOnly: false });
  const order = new ReferenceOrder();
  order.add(parser, parser.feed(text));
  order.add(parser, parser.end());
  return order.tests();
}

/**
 * Collects what a parser returns, to give the reference's list at the end
 * (see parseStatusLogText); for callers that feed a parser themselves.
 */
export class ReferenceOrder {
  private readonly bySeq: Array<TkoTest | undefined> = [];
  add(parser: StatusLogParser, tests: readonly TkoTest[]): void {
    const seqs = parser.sequences;
    for (let i = 0; i < tests.length; i++) this.bySeq[seqs[i]!] = tests[i];
  }
  tests(): TkoTest[] {
    return this.bySeq.filter((t): t is TkoTest => t !== undefined);
  }
}

// datetime.fromtimestamp accepts years 1 to 9999 (bounds taken in UTC; the
// reference's local time zone moves them by hours).
const MIN_TIMESTAMP = -62135596800;
const MAX_TIMESTAMP = 253402300799;

function fromTimestampOk(t: number): boolean {
  return t >= MIN_TIMESTAMP && t <= MAX_TIMESTAMP;
}

/** Python 2 int(str): optional ASCII whitespace around an optionally signed run of decimal digits. */
function pyIntOrNull(s: string): number | null {
  const m = /^[ \t\n\r\v\f]*([+-]?[0-9]+)[ \t\n\r\v\f]*$/.exec(s);
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isFinite(n) ? n : null;
}

/** Python truthiness of a keyval value: "" and 0 are false. */
function isTruthy(v: KeyvalValue | undefined): v is KeyvalValue {
  if (v === undefined) return false;
  if (typeof v === 'string') return v !== '';
  if (typeof v === 'bigint') return v !== 0n;
  return v !== 0;
}

function pyStr(v: KeyvalValue): string {
  return typeof v === 'string' ? v : v.toString();
}

/**
 * A copy of `s` that does not keep the chunk it was sliced from alive: V8
 * makes a slice of 13 characters or more a view into its parent string, so
 * a kept test would otherwise hold on to its whole 64 KiB piece of the log.
 */
function detach(s: string): string {
  return s.length < 13 ? s : (' ' + s).slice(1);
}

/** status_lib.clean_raw_line: every "\r\x00" is deleted. */
function cleanLine(line: string): string {
  return line.indexOf('\r\x00') < 0 ? line : line.split('\r\x00').join('');
}

/** parser.make_dummy_abort, with the subdir used for both name fields as both of its callers do. */
function dummyAbort(indent: number, subdir: string | null, timestamp: string | undefined, reason: string): string {
  const s = subdir || '----';
  return `${'\t'.repeat(indent)}END ABORT\t${s}\t${s}${timestamp ? `\ttimestamp=${timestamp}` : ''}\t${reason}`;
}

/**
 * Python 2's sort order for byte strings, i.e. UTF-8 byte order, which is
 * code point order; UTF-16 code unit order differs only between surrogate
 * pairs and U+E000..U+FFFF.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800) x = x <= 0xdfff ? x + 0x2000 : x - 0x800;
      if (y >= 0xd800) y = y <= 0xdfff ? y + 0x2000 : y - 0x800;
      return x - y;
    }
  }
  return a.length - b.length;
}
