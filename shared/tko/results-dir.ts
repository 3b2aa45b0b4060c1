/**
 * Finding and reading autotest results directories the way TKO does
 * (autotest/autotest tko/parse.py `parse_path` and `_get_job_subdirs`,
 * tko/models.py `job.read_keyval`, `test.parse_test`, `iteration.load_from_keyval`,
 * tko/parsers/version_1.py `job.exit_status` and `iteration.parse_line_into_dicts`,
 * tko/parsers/version_0.py `job.determine_hostname`, tko/utils.py
 * `find_toplevel_job_dir`).
 *
 * A path is one of:
 *   - a status.log file: that log, its directory taken as the job's;
 *   - a single machine's results directory (status.log, or `status`, and keyval);
 *   - a multi-machine job: a directory with a `.machines` file naming the
 *     machines' subdirectories, or one with nothing but subdirectories; each
 *     is looked at the same way, and the directory's own status.log, if it
 *     has one, is a job too (synchronous multi-machine tests write there);
 *   - a whole results tree: a directory that is none of the above, whose
 *     subdirectories are looked at the same way, recursively (what tko/parse.py
 *     does with the entries of the directory it is given, without -o).
 * Symbolic links to directories are not followed (the reference follows them;
 * a results tree with a link to one of its parents would never end).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { containedPath } from '../contained.js';
import type { JobStatus } from '../statuslog/entry.js';
import { KeyvalFormatError } from '../statuslog/keyval.js';
import { ReferenceOrder, StatusLogParser, type StatusLogParserOptions, type StatusLogSummary } from './parser.js';
import type { TkoTest } from './types.js';

export interface TestIteration {
  /** The {attr} keyvals of the iteration, as strings. */
  attr: Record<string, string>;
  /** The {perf} keyvals (and untyped ones), as numbers; values that are not a plain decimal number are left out, as TKO leaves them out. */
  perf: Record<string, number>;
}

export type ParsedTest = TkoTest & {
  /** <job>/<subdir>/keyval, values as written ({} when the test has no subdir or the file is missing). */
  keyval: Record<string, string>;
  /** <job>/<subdir>/results/keyval, one entry per iteration. */
  iterations: TestIteration[];
};

export interface ParsedJob {
  /** The job directory (the one holding the status.log). */
  dir: string;
  /** The file that was parsed. */
  statusLog: string;
  /** TKO's machine name for the job (keyval hostname / host_group_name, or sysinfo for a multi-machine hostname); absent if none. */
  machine?: string;
  /**
   * The job's keyval as TKO merges it: keyval files from the top-level job
   * directory (the one with .autoserv_execute) down to this one, the upper
   * ones winning except for hostname. Values as written.
   */
  jobKeyval: Record<string, string>;
  /**
   * status_version from the job keyval, or null. The reference parses a log
   * whose keyval does not say 1 with its version 0 parser; here every log is
   * parsed with the version 1 rules.
   */
  statusVersion: string | null;
  /** SERVER_JOB's status, from .autoserv_execute. */
  serverJobStatus: JobStatus;
  /** In the reference's order (SERVER_JOB first), see parser.ts. */
  tests: ParsedTest[];
}

export interface JobLocation {
  dir: string;
  statusLog: string;
}

export interface FoundJobs {
  /**
   * 'file': the path was a status.log; 'job': a single job directory; 'tree':
   * a multi-machine job or a results tree (any number of jobs, maybe none).
   */
  kind: 'file' | 'job' | 'tree';
  jobs: JobLocation[];
}

export interface ParseResultsOptions {
  /** TZ for "Job aborted by <user> at <date>" (default process.env.TZ). */
  tz?: string;
  /** Skip reading each test's keyval and results/keyval. */
  skipTestKeyvals?: boolean;
}

/** A path that is neither a status.log nor a directory that can be read. */
export class ResultsPathError extends Error {
  override readonly name = 'ResultsPathError';
  constructor(
    message: string,
    readonly path: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

// Under V8's large-object size, so each chunk's string dies young instead of waiting for a full GC.
const CHUNK_BYTES = 1 << 16;

/** Feed a file to a parser in chunks (a log may be far larger than is worth holding as one string). */
function feedFile(file: string, parser: StatusLogParser, order: ReferenceOrder | null): void {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK_BYTES);
    const decoder = new StringDecoder('utf8');
    for (;;) {
      const n = fs.readSync(fd, buf, 0, CHUNK_BYTES, null);
      if (n === 0) break;
      const tests = parser.feed(decoder.write(n === CHUNK_BYTES ? buf : buf.subarray(0, n)));
      if (order !== null) order.add(parser, tests);
    }
    const rest = decoder.end();
    if (rest !== '') {
      const tests = parser.feed(rest);
      if (order !== null) order.add(parser, tests);
    }
    const tests = parser.end();
    if (order !== null) order.add(parser, tests);
  } finally {
    fs.closeSync(fd);
  }
}

/** Parse one status.log file, read in chunks: the tests in the reference's order. */
export function parseStatusLogFile(file: string, options: Omit<StatusLogParserOptions, 'summaryOnly'> = {}): TkoTest[] {
  const parser = new StatusLogParser({ file, ...options, summaryOnly: false });
  const order = new ReferenceOrder();
  feedFile(file, parser, order);
  return order.tests();
}

/** Parse one status.log file keeping only counts (memory does not grow with the log). */
export function summariseStatusLogFile(
  file: string,
  options: Omit<StatusLogParserOptions, 'summaryOnly'> = {},
): StatusLogSummary {
  const parser = new StatusLogParser({ file, ...options, summaryOnly: true });
  feedFile(file, parser, null);
  return parser.summary;
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** status.log, else the older name `status` (tko/parse.py parse_one). */
export function statusFileOf(dir: string): string | null {
  for (const name of ['status.log', 'status']) {
    const p = path.join(dir, name);
    if (isFile(p)) return p;
  }
  return null;
}

function subdirectories(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
}

/** tko/parse.py _get_job_subdirs: a multi-machine job's (or a tree's) subdirectories, or null for a job directory. */
function jobSubdirs(dir: string): string[] | null {
  const machines = path.join(dir, '.machines');
  if (isFile(machines)) {
    const names = new Set(
      fs
        .readFileSync(machines, 'utf8')
        .split('\n')
        .map((l) => l.trim()),
    );
    const existing = [...names]
      .filter((n) => n !== '' && n !== '.' && n !== '..' && !n.includes('/'))
      .filter((n) => {
        try {
          return fs.lstatSync(path.join(dir, n)).isDirectory();
        } catch {
          return false;
        }
      })
      .sort();
    if (existing.length > 0) return existing;
  }
  const entries = fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.name !== '.parse.lock');
  const dirs = entries.filter((d) => d.isDirectory());
  if (entries.length > 0 && dirs.length === entries.length) return dirs.map((d) => d.name).sort();
  return null;
}

/** Where the status logs under `p` are (see the module comment). */
export function findJobs(p: string): FoundJobs {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ResultsPathError(
      `cannot read ${p}: ${code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`,
      p,
      'give a status.log file or a results directory',
    );
  }
  if (st.isFile()) return { kind: 'file', jobs: [{ dir: path.dirname(p), statusLog: p }] };
  if (!st.isDirectory()) {
    throw new ResultsPathError(`${p} is neither a file nor a directory`, p, 'give a status.log file or a results directory');
  }
  const jobs: JobLocation[] = [];
  const walk = (dir: string): 'job' | 'tree' => {
    const subdirs = jobSubdirs(dir);
    if (subdirs === null) {
      const log = statusFileOf(dir);
      if (log !== null) {
        jobs.push({ dir, statusLog: log });
        return 'job';
      }
      for (const sub of subdirectories(dir)) walk(path.join(dir, sub));
      return 'tree';
    }
    const own = path.join(dir, 'status.log');
    if (isFile(own)) jobs.push({ dir, statusLog: own });
    for (const sub of subdirs) walk(path.join(dir, sub));
    return 'tree';
  };
  try {
    return { kind: walk(p), jobs };
  } catch (e) {
    throw new ResultsPathError(`cannot read ${p}: ${(e as Error).message}`, p, 'check the directory\'s permissions');
  }
}

/** Python 2 str.rstrip() / strip() whitespace. */
const PY_TRAILING_SPACE = /[ \t\n\r\v\f]+$/;
const PY_LEADING_SPACE = /^[ \t\n\r\v\f]+/;
const KEYVAL_LINE = /^[-.A-Za-z0-9_]+(?:\{[A-Za-z0-9_]*\})?=/;

/**
 * A keyval file with the line rules of shared/statuslog/keyval.ts parseKeyval
 * (autotest's read_keyval, plus blank lines and {tag} keys), keeping every
 * value as written. A missing file is empty. A later key wins.
 */
export function readKeyvalRaw(file: string): Map<string, string> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return new Map();
    throw e;
  }
  const out = new Map<string, string>();
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((raw, i) => {
    const line = raw.replace(/#[^\n]*/, '').replace(PY_TRAILING_SPACE, '');
    if (line === '') return;
    if (!KEYVAL_LINE.test(line)) throw new KeyvalFormatError(`Invalid format line: ${line}`, file, i + 1);
    const eq = line.indexOf('=');
    out.set(line.slice(0, eq), line.slice(eq + 1));
  });
  return out;
}

const TYPED_ITERATION_LINE = /^([^=]*)\{([A-Za-z0-9_]*)\}=([^\n]*)$/;
const UNTYPED_ITERATION_LINE = /^([^=]*)=([^\n]*)$/;
const PERF_VALUE = /^[0-9]+(\.[0-9]+)?$/;

/**
 * A test's results/keyval as TKO reads its iterations: blocks separated by
 * blank lines, `key{attr}=v` into attr, `key{perf}=v` and untyped `key=v`
 * into perf when v is a plain decimal number; anything else is skipped, as
 * TKO skips it (with a warning on its debug output). Two blank lines in a
 * row make an empty iteration, as in TKO. A missing file has none.
 */
export function readIterations(file: string): TestIteration[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return [];
    throw e;
  }
  const iterations: TestIteration[] = [];
  let attr: Record<string, string> = {};
  let perf: Record<string, number> = {};
  let any = false;
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (const raw of lines) {
    const line = raw.replace(PY_LEADING_SPACE, '').replace(PY_TRAILING_SPACE, '');
    if (line === '') {
      iterations.push({ attr, perf });
      attr = {};
      perf = {};
      any = false;
      continue;
    }
    let key: string;
    let type: string;
    let value: string;
    const typed = TYPED_ITERATION_LINE.exec(line);
    if (typed) {
      [, key, type, value] = typed as unknown as [string, string, string, string];
    } else {
      const untyped = UNTYPED_ITERATION_LINE.exec(line);
      if (!untyped) continue;
      [, key, value] = untyped as unknown as [string, string, string];
      type = 'perf';
    }
    if (type === 'attr') {
      attr[key] = value;
      any = true;
    } else if (type === 'perf' && PERF_VALUE.test(value)) {
      perf[key] = Number(value);
      any = true;
    }
  }
  if (any) iterations.push({ attr, perf });
  return iterations;
}

/** tko/utils.py find_toplevel_job_dir: the nearest directory upwards with .autoserv_execute, or null. */
export function findToplevelJobDir(dir: string): string | null {
  let d = path.resolve(dir);
  for (;;) {
    if (fs.existsSync(path.join(d, '.autoserv_execute'))) return d;
    const up = path.dirname(d);
    if (up === d) return null;
    d = up;
  }
}

/**
 * version_1 job.exit_status: from the second line of .autoserv_execute (a
 * wait status): GOOD for exit 0, FAIL for another exit code, ABORT for a
 * signal or when the file is missing or unreadable.
 */
export function serverJobStatusOf(dir: string): JobStatus {
  const top = findToplevelJobDir(dir);
  if (top === null) return 'ABORT';
  let lines: string[];
  try {
    lines = fs.readFileSync(path.join(top, '.autoserv_execute'), 'utf8').split(/(?<=\n)/);
  } catch {
    return 'ABORT';
  }
  if (lines.length < 2) return 'ABORT';
  const m = /^[ \t\n\r\v\f]*([+-]?[0-9]+)[ \t\n\r\v\f]*$/.exec(lines[1]!);
  if (!m) return 'ABORT';
  const status = BigInt(m[1]!);
  if ((status & 0x7fn) !== 0n) return 'ABORT';
  return ((status >> 8n) & 0xffn) !== 0n ? 'FAIL' : 'GOOD';
}

/** models.job.read_keyval: the keyval files from the top-level job directory down to `dir`, merged. */
export function readJobKeyval(dir: string): Map<string, string> {
  let d = path.resolve(dir);
  const top = findToplevelJobDir(d) ?? d;
  const merged = new Map<string, string>();
  for (;;) {
    const upper = readKeyvalRaw(path.join(d, 'keyval'));
    // A lower directory's hostname wins; otherwise the upper file wins.
    if (merged.has('hostname')) upper.delete('hostname');
    for (const [k, v] of upper) merged.set(k, v);
    if (d === top) break;
    const up = path.dirname(d);
    if (up === d) break;
    d = up;
  }
  return merged;
}

/** version_0 job.determine_hostname. */
function determineMachine(keyval: ReadonlyMap<string, string>, dir: string): string {
  const group = keyval.get('host_group_name');
  let machine = keyval.get('hostname') ?? '';
  const multi = machine.includes(',');
  if (group) {
    if (multi || machine === '') machine = group;
  } else if (multi) {
    const fromSysinfo = hostnameFromSysinfo(dir);
    if (fromSysinfo !== null) machine = fromSysinfo;
  }
  return machine;
}

function hostnameFromSysinfo(dir: string): string | null {
  try {
    return fs.readFileSync(path.join(dir, 'sysinfo', 'hostname'), 'utf8').split('\n')[0]!.replace(PY_TRAILING_SPACE, '');
  } catch {
    // fall through to uname -a
  }
  try {
    const words = fs.readFileSync(path.join(dir, 'sysinfo', 'uname_-a'), 'utf8').split('\n')[0]!.trim().split(/[ \t\r\v\f]+/);
    return words[1] ?? null;
  } catch {
    return null;
  }
}

/** `<job>/<subdir>` when it stays inside the job directory (a subdir comes from the log, which is data). */
function testDir(jobDir: string, subdir: string): string | null {
  return containedPath(jobDir, subdir);
}

function toRecord(map: ReadonlyMap<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of map) out[k] = v;
  return out;
}

/** Parse one job: its status.log, job keyval, .autoserv_execute, and each test's keyvals. */
export function parseJob(job: JobLocation, options: ParseResultsOptions = {}): ParsedJob {
  const jobKeyval = readJobKeyval(job.dir);
  const serverJobStatus = serverJobStatusOf(job.dir);
  const parser = new StatusLogParser({
    jobKeyval,
    serverJobStatus,
    file: job.statusLog,
    ...(options.tz === undefined ? {} : { tz: options.tz }),
  });
  const order = new ReferenceOrder();
  feedFile(job.statusLog, parser, order);
  const tests: ParsedTest[] = order.tests().map((t) => {
    let keyval: Record<string, string> = {};
    let iterations: TestIteration[] = [];
    if (t.subdir && options.skipTestKeyvals !== true) {
      const d = testDir(job.dir, t.subdir);
      if (d !== null) {
        keyval = toRecord(readKeyvalRaw(path.join(d, 'keyval')));
        iterations = readIterations(path.join(d, 'results', 'keyval'));
      }
    }
    return { ...t, keyval, iterations };
  });
  const machine = determineMachine(jobKeyval, job.dir);
  return {
    dir: job.dir,
    statusLog: job.statusLog,
    ...(machine === '' ? {} : { machine }),
    jobKeyval: toRecord(jobKeyval),
    statusVersion: jobKeyval.get('status_version') ?? null,
    serverJobStatus,
    tests,
  };
}

/** findJobs, then parseJob for each. */
export function parseResults(p: string, options: ParseResultsOptions = {}): { kind: FoundJobs['kind']; jobs: ParsedJob[] } {
  const found = findJobs(p);
  return { kind: found.kind, jobs: found.jobs.map((j) => parseJob(j, options)) };
}

