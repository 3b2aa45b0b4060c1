/**
 * StatusLogWriter: appends autotest version-1 status.log entries to one file,
 * keeping the nesting depth itself the way autotest's status_logger does
 * (autotest/autotest client/shared/base_job.py: `render_entry` renders an END
 * one level shallower than the current indent, `record_entry` raises the
 * indent after a START and lowers it after an END).
 *
 * Durability: every entry, continuation lines included, is one write(2) of a
 * complete buffer to an O_APPEND descriptor, followed by fdatasync(2) by
 * default (see durable.ts for exactly what that does and does not promise).
 *
 * Resuming: a writer opened on an existing file learns the open levels from
 * the file's content, counting START/END levels exactly as the reference
 * parser (tko/parsers/version_1.py, state_iterator) does, including its
 * handling of indentation that is too low (an implicit END ABORT of the
 * levels above) or too high (the line is ignored). A torn last line (no
 * newline; only possible if a write was cut short) is truncated away first.
 *
 * A writer assumes it is the only writer of its file.
 *
 * All methods are synchronous: an entry is on disk when the call returns.
 */
import * as fs from 'node:fs';
import { appendRecord, openAppend, syncFd, type SyncMode } from './durable.js';
import {
  type FieldsInput,
  type JobStatus,
  type StatusCode,
  JOB_STATUSES,
  RENDERED_NONE,
  STATUS_LINE_RE,
  StatusLogUsageError,
  isJobStatus,
  isWorseThan,
  renderEntry,
  renderMessage,
  sanitiseName,
  worseOf,
} from './entry.js';

export type { SyncMode } from './durable.js';

/** One open START level. */
export interface OpenLevel {
  /** As written in the START line; null for "----". */
  subdir: string | null;
  testname: string | null;
  /**
   * Worst status recorded inside the level so far (NOSTATUS if none), as
   * tko's status_stack keeps it; a closed inner level always passes its
   * status up (the reference parser skips that at a client job's boundary,
   * which only matters for its test results, not for the depth).
   */
  status: JobStatus;
  /** The reason that came with that worst status ('' if none). */
  reason: string;
}

export interface StatusLogAnalysis {
  /** Open levels, outermost first; depth = levels.length. */
  levels: OpenLevel[];
  /** Worst status recorded at the top level (outside every START), NOSTATUS if none. */
  topStatus: JobStatus;
  /** Lines the parser reads as status lines and acts on. */
  statusLines: number;
  /** Status lines the parser ignores because they are indented too deep. */
  overIndentedLines: number;
  /** Levels the parser would close with a synthetic END ABORT because a later line was indented too little. */
  implicitAborts: number;
  /**
   * 1-based numbers of lines whose status word the reference parser rejects
   * (it raises AssertionError and the whole parse fails, e.g. a bare "END" or
   * an unknown word). They are skipped here.
   */
  invalidLines: number[];
}

type Level = OpenLevel;

function newLevel(subdir: string | null, testname: string | null): Level {
  return { subdir, testname, status: 'NOSTATUS', reason: '' };
}

/** status_stack.update, remembering the reason that came with the worst status. */
function updateLevel(level: Level, status: string, reason: string): void {
  if (!isJobStatus(status)) return;
  if (isWorseThan(status, level.status)) {
    level.status = status;
    level.reason = reason;
  } else if (status === level.status && level.reason === '' && reason !== '') {
    level.reason = reason;
  }
}

function parseName(name: string): string | null {
  return name === RENDERED_NONE ? null : name;
}

/** Python 2's `^(\w+)=(.+)` on a byte string. */
const PARSER_FIELD_RE = /^[A-Za-z0-9_]+=[^\n]/;

/**
 * Work out the open levels at the end of a status log, as the reference
 * parser would see them. `text` is the file's content (complete lines).
 */
export function analyseStatusLog(text: string): StatusLogAnalysis {
  const root = newLevel(null, null);
  const stack: Level[] = [root];
  const result: StatusLogAnalysis = {
    levels: [],
    topStatus: 'NOSTATUS',
    statusLines: 0,
    overIndentedLines: 0,
    implicitAborts: 0,
    invalidLines: [],
  };
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((rawLine, index) => {
    // status_lib.clean_raw_line
    const line = rawLine.replace(/\r\x00/g, '');
    if (!STATUS_LINE_RE.test(line)) return;
    const indent = /^\t*/.exec(line)![0].length;
    const parts = line.slice(indent).split('\t');
    const word = parts[0]!;
    let type: 'START' | 'INFO' | 'END' | 'STATUS';
    let status: string | undefined;
    if (word === 'START') type = 'START';
    else if (word === 'INFO') type = 'INFO';
    else if (word.startsWith('END ')) {
      type = 'END';
      status = word.slice(4);
    } else {
      type = 'STATUS';
      status = word;
    }
    if (status !== undefined && !isJobStatus(status)) {
      result.invalidLines.push(index + 1);
      return;
    }
    let f = 3;
    while (f < parts.length && PARSER_FIELD_RE.test(parts[f]!)) f++;
    const reason = type === 'INFO' ? '' : parts.slice(f).join('\t');

    for (;;) {
      const depth = stack.length - 1;
      const expected = type === 'END' ? depth - 1 : depth;
      if (indent < expected) {
        // The parser inserts "END ABORT" for the innermost level and retries the line.
        const closed = stack.pop()!;
        updateLevel(closed, 'ABORT', reason);
        updateLevel(stack[stack.length - 1]!, closed.status, closed.reason);
        result.implicitAborts++;
        continue;
      }
      if (indent > expected) {
        result.overIndentedLines++;
        return;
      }
      break;
    }
    result.statusLines++;
    const top = stack[stack.length - 1]!;
    switch (type) {
      case 'START':
        stack.push(newLevel(parseName(parts[1]!), parseName(parts[2]!)));
        break;
      case 'INFO':
        break;
      case 'STATUS':
        updateLevel(top, status!, reason);
        break;
      case 'END': {
        stack.pop();
        updateLevel(top, status!, reason);
        updateLevel(stack[stack.length - 1]!, top.status, top.reason);
        break;
      }
    }
  });
  result.levels = stack.slice(1).map((l) => ({ ...l }));
  result.topStatus = root.status;
  return result;
}

export interface StatusLogWriterOptions {
  /** 'fdatasync' (default), 'fsync', or 'none' (tests, throwaway logs). */
  sync?: SyncMode;
  /**
   * If the file already has content, continue at the depth that content
   * leaves open (default true). With false the writer starts at depth 0.
   */
  resume?: boolean;
  /** Clock in seconds since the epoch (default Date.now()/1000). */
  now?: () => number;
  /** TZ for localtime= (default: process.env.TZ when each entry is rendered). */
  tz?: string;
}

export interface RecordInput {
  status: StatusCode;
  subdir?: string | null;
  testname?: string | null;
  message?: string;
  fields?: FieldsInput;
  /** Default: the writer's clock. */
  timestamp?: number;
}

/** What a resumed writer found in the existing file. */
export interface ResumeInfo extends StatusLogAnalysis {
  /** Bytes after the last newline that were truncated away (a cut-short write), if any. */
  truncatedTail?: Buffer;
}

/**
 * An error that says which status its group should end with, like autotest's
 * TestBaseException.exit_status (TestFail -> FAIL, TestNAError -> TEST_NA...).
 */
export class StatusError extends Error {
  override readonly name = 'StatusError';
  constructor(
    readonly exitStatus: JobStatus,
    message: string,
  ) {
    super(message);
  }
}

export class StatusLogWriter {
  readonly path: string;
  /** Set when the writer was opened on a non-empty file and resumed from it. */
  readonly resumed: ResumeInfo | undefined;
  private fd: number | undefined;
  private readonly sync: SyncMode;
  private readonly now: () => number;
  private readonly tz: string | undefined;
  /** stack[0] is the top level (outside every START); depth = stack.length - 1. */
  private readonly stack: Level[];

  constructor(path: string, options: StatusLogWriterOptions = {}) {
    this.path = path;
    this.sync = options.sync ?? 'fdatasync';
    this.now = options.now ?? (() => Date.now() / 1000);
    this.tz = options.tz;
    this.stack = [newLevel(null, null)];
    const { fd, created } = openAppend(path, this.sync);
    this.fd = fd;
    try {
      if (!created && options.resume !== false) {
        this.resumed = this.resumeFrom(fd);
      }
    } catch (e) {
      fs.closeSync(fd);
      this.fd = undefined;
      throw e;
    }
  }

  private resumeFrom(fd: number): ResumeInfo | undefined {
    const content = fs.readFileSync(this.path);
    if (content.length === 0) return undefined;
    const complete = content.lastIndexOf(0x0a) + 1;
    let truncatedTail: Buffer | undefined;
    if (complete < content.length) {
      truncatedTail = Buffer.from(content.subarray(complete));
      fs.ftruncateSync(fd, complete);
      syncFd(fd, this.sync);
    }
    const analysis = analyseStatusLog(content.subarray(0, complete).toString('utf8'));
    this.stack[0]!.status = analysis.topStatus;
    for (const l of analysis.levels) this.stack.push({ ...l });
    return truncatedTail === undefined ? analysis : { ...analysis, truncatedTail };
  }

  /** Current nesting depth: the indent of the next non-END line. */
  get depth(): number {
    return this.stack.length - 1;
  }

  /** The open START levels, outermost first (copies). */
  get openLevels(): OpenLevel[] {
    return this.stack.slice(1).map((l) => ({ ...l }));
  }

  get closed(): boolean {
    return this.fd === undefined;
  }

  /**
   * Write one entry at the current depth (one less for END), then adjust the
   * depth. Returns the text written.
   */
  record(input: RecordInput): string {
    if (this.fd === undefined) throw new StatusLogUsageError(`status log writer for ${this.path} is closed`);
    const isEnd = input.status.startsWith('END ');
    if (isEnd && this.depth === 0) {
      throw new StatusLogUsageError(`${input.status} with no open START level in ${this.path}`);
    }
    const indent = isEnd ? this.depth - 1 : this.depth;
    const text = renderEntry(
      {
        status: input.status,
        subdir: input.subdir,
        testname: input.testname,
        message: input.message ?? '',
        fields: input.fields,
        timestamp: input.timestamp ?? this.now(),
      },
      indent,
      this.tz === undefined ? {} : { tz: this.tz },
    );
    appendRecord(this.fd, Buffer.from(text, 'utf8'), this.sync);

    // Bookkeeping only after the entry is safely on disk.
    // Names and reason as the parser will read them back from the file.
    const reason = renderMessage(input.message ?? '').first;
    if (input.status === 'START') {
      this.stack.push(newLevel(parseName(sanitiseName(input.subdir)), parseName(sanitiseName(input.testname))));
    } else if (isEnd) {
      const closed = this.stack.pop()!;
      updateLevel(closed, input.status.slice(4), reason);
      updateLevel(this.stack[this.stack.length - 1]!, closed.status, closed.reason);
    } else if (input.status !== 'INFO') {
      updateLevel(this.stack[this.stack.length - 1]!, input.status, reason);
    }
    return text;
  }

  start(subdir: string | null | undefined, testname: string | null | undefined, fields?: FieldsInput): string {
    return this.record({ status: 'START', subdir, testname, fields });
  }

  end(
    status: JobStatus,
    subdir: string | null | undefined,
    testname: string | null | undefined,
    fields?: FieldsInput,
    message?: string,
  ): string {
    assertJobStatus(status);
    return this.record({ status: `END ${status}`, subdir, testname, fields, message });
  }

  info(fields: FieldsInput, message?: string): string {
    return this.record({ status: 'INFO', fields, message });
  }

  status(
    status: JobStatus,
    subdir: string | null | undefined,
    testname: string | null | undefined,
    message: string,
    fields?: FieldsInput,
  ): string {
    assertJobStatus(status);
    return this.record({ status, subdir, testname, message, fields });
  }

  /**
   * START, run fn, END — even if fn throws. The END status is the worst (in
   * job_statuses order, TEST_NA worst of all) of GOOD, everything recorded
   * inside the group, and, if fn threw, the error's status: its `exitStatus`
   * if it has a valid one (see {@link StatusError}), ABORT otherwise, as
   * autotest's _run_group does for unexpected exceptions. The END's message
   * is the error's message (with the stack as continuation lines for ABORT),
   * or else the reason that came with the worst status inside.
   *
   * Levels that fn left open are closed with END ABORT first. fn's result is
   * returned and its error rethrown.
   */
  async group<T>(
    subdir: string | null | undefined,
    testname: string | null | undefined,
    fn: (writer: this) => T | Promise<T>,
  ): Promise<T> {
    this.start(subdir, testname);
    const level = this.depth;
    let result: T | undefined;
    let failed = false;
    let error: unknown;
    try {
      result = await fn(this);
    } catch (e) {
      failed = true;
      error = e;
    }
    if (this.depth < level) {
      throw new StatusLogUsageError(
        `group ${testname ?? subdir ?? RENDERED_NONE}: its level was closed by its own body`,
        failed ? { cause: error } : undefined,
      );
    }
    while (this.depth > level) {
      const open = this.stack[this.stack.length - 1]!;
      this.end('ABORT', open.subdir, open.testname, undefined, 'level left open when its enclosing group ended');
    }
    const inside = this.stack[level]!;
    let status = worseOf('GOOD', inside.status);
    let message = status === inside.status ? inside.reason : '';
    if (failed) {
      const errorStatus = errorExitStatus(error);
      status = worseOf(status, errorStatus);
      message = errorMessage(error, errorStatus === 'ABORT');
    }
    this.end(status, subdir, testname, undefined, message);
    if (failed) throw error;
    return result as T;
  }

  /** Close the file. Further writes throw. */
  close(): void {
    if (this.fd !== undefined) {
      const fd = this.fd;
      this.fd = undefined;
      fs.closeSync(fd);
    }
  }
}

function assertJobStatus(status: unknown): asserts status is JobStatus {
  if (!isJobStatus(status)) {
    throw new StatusLogUsageError(`${JSON.stringify(status)} is not one of ${JOB_STATUSES.join(', ')}`);
  }
}

function errorExitStatus(error: unknown): JobStatus {
  const s = (error as { exitStatus?: unknown } | null | undefined)?.exitStatus;
  return isJobStatus(s) ? s : 'ABORT';
}

function errorMessage(error: unknown, withStack: boolean): string {
  const message = error instanceof Error ? error.message : String(error);
  if (!withStack || !(error instanceof Error) || !error.stack) return message;
  return `${message}\n${error.stack}`;
}
