/**
 * `xentest parse PATH [--json] [--detail]`: what autotest's TKO parser makes
 * of a status.log or of a results directory (see shared/tko/).
 *
 * PATH is a status.log file, a job's results directory, a multi-machine job
 * or a whole results tree (shared/tko/results-dir.ts findJobs).
 *
 * --json, for a status.log or a single job directory:
 *   {"tests": [[testname, status, reason], ...]}
 * and for a multi-machine job or a tree (any number of jobs):
 *   {"jobs": [{"dir": DIR, "machine": NAME|null, "tests": [...]}, ...]}
 * The tests are in the reference parser's order (SERVER_JOB first).
 * --detail makes each test an object instead of a triple:
 *   {"testname", "status", "reason", "subdir" (null for none),
 *    "kernel": {"base", "patches": [{"spec", "reference", "hash"}], "hash"},
 *    "started", "finished" (seconds since the epoch, or null),
 *    "keyval": {<subdir>/keyval}, "iterations": [{"attr": {...}, "perf": {...}}]}
 *
 * Exit status: 0 parsed (whatever the tests' statuses), 2 a log or keyval
 * the reference parser rejects, or a PATH that cannot be read or holds no
 * status.log, 64 a usage mistake.
 */
import { parseArgs } from 'node:util';
import { JOB_STATUSES, type JobStatus } from '../../shared/statuslog/entry.js';
import { KeyvalFormatError } from '../../shared/statuslog/keyval.js';
import { StatusLogParseError } from '../../shared/tko/parser.js';
import { ResultsPathError, findJobs, parseJob, type ParsedJob, type ParsedTest } from '../../shared/tko/results-dir.js';
import { where } from './errors.js';
import { UsageError } from './usage.js';

export const EXIT_PARSE_REJECTED = 2;

const USAGE = 'usage: xentest parse PATH [--json] [--detail]';

export function parseCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean', default: false },
      detail: { type: 'boolean', default: false },
    },
    allowPositionals: true,
  });
  const target = positionals[0];
  if (positionals.length !== 1 || target === undefined) {
    throw new UsageError('parse takes exactly one PATH: a status.log or a results directory', USAGE);
  }
  let kind: 'file' | 'job' | 'tree';
  let jobs: ParsedJob[];
  try {
    const found = findJobs(target);
    if (found.jobs.length === 0) {
      process.stderr.write(
        `${target}: error: no status.log (or status) file in it or in its subdirectories\n` +
          '  hint: give a status.log file, a job\'s results directory, or a directory of results directories\n',
      );
      return EXIT_PARSE_REJECTED;
    }
    kind = found.kind;
    jobs = found.jobs.map((j) => parseJob(j, { skipTestKeyvals: !values.detail }));
  } catch (e) {
    const message = describeError(e);
    if (message === undefined) throw e;
    process.stderr.write(message + '\n');
    return EXIT_PARSE_REJECTED;
  }

  const single = kind !== 'tree';
  if (values.json) {
    const tests = (job: ParsedJob): unknown[] => job.tests.map((t) => (values.detail ? detailJson(t) : [t.testname, t.status, t.reason]));
    const out = single
      ? { tests: tests(jobs[0]!) }
      : { jobs: jobs.map((j) => ({ dir: j.dir, machine: j.machine ?? null, tests: tests(j) })) };
    process.stdout.write(JSON.stringify(out) + '\n');
    return 0;
  }
  const blocks = jobs.map((j) => table(j, values.detail === true, single ? undefined : j));
  process.stdout.write(blocks.join('\n'));
  return 0;
}

/** A user-caused failure as `FILE:LINE: error: what` and a hint; undefined for anything else (a bug). */
function describeError(e: unknown): string | undefined {
  if (e instanceof StatusLogParseError) {
    return `${where(e.file ?? 'status.log', e.line ?? 0)}: error: ${e.detail}\n  hint: ${e.hint}`;
  }
  if (e instanceof KeyvalFormatError) {
    return (
      `${where(e.file ?? 'keyval', e.line)}: error: ${e.message}\n` +
      '  hint: a keyval line is key=value with a key of letters, digits, "_", "-" and "."; autotest\'s parser rejects the job because of it'
    );
  }
  if (e instanceof ResultsPathError) return `${e.path}: error: ${e.message}\n  hint: ${e.hint}`;
  const err = e as NodeJS.ErrnoException | null;
  if (err && typeof err.code === 'string' && typeof err.path === 'string') {
    return `${err.path}: error: cannot read it (${err.code})\n  hint: check that it exists and that you may read it`;
  }
  return undefined;
}

function detailJson(t: ParsedTest): Record<string, unknown> {
  return {
    testname: t.testname,
    status: t.status,
    reason: t.reason,
    subdir: t.subdir,
    kernel: { base: t.kernel.base, patches: t.kernel.patches, hash: t.kernel.hash },
    started: t.started,
    finished: t.finished,
    keyval: t.keyval,
    iterations: t.iterations,
  };
}

function time(t: number | null): string {
  return t === null ? '-' : new Date(t * 1000).toISOString().slice(0, 19).replace('T', ' ') + 'Z';
}

/** One job as a table, then a count per status. */
function table(job: ParsedJob, detail: boolean, heading: ParsedJob | undefined): string {
  const header = detail ? ['TEST', 'STATUS', 'SUBDIR', 'KERNEL', 'STARTED', 'FINISHED', 'REASON'] : ['TEST', 'STATUS', 'REASON'];
  const rows = job.tests.map((t) =>
    detail
      ? [t.testname, t.status, t.subdir ?? '-', t.kernel.base, time(t.started), time(t.finished), t.reason]
      : [t.testname, t.status, t.reason],
  );
  const all = [header, ...rows];
  const widths = header.map((_, i) => (i === header.length - 1 ? 0 : Math.min(48, Math.max(...all.map((r) => r[i]!.length)))));
  const lines = all.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd());
  const counts = new Map<JobStatus, number>();
  for (const t of job.tests) counts.set(t.status, (counts.get(t.status) ?? 0) + 1);
  const summary = JOB_STATUSES.filter((s) => counts.has(s))
    .map((s) => `${counts.get(s)} ${s}`)
    .join(', ');
  const title = heading === undefined ? '' : `${heading.dir}${heading.machine ? ` (${heading.machine})` : ''}\n`;
  return `${title}${lines.join('\n')}\n${job.tests.length} test${job.tests.length === 1 ? '' : 's'}: ${summary}\n`;
}
