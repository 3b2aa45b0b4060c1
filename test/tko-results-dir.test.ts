/**
 * shared/tko/results-dir.ts: finding the jobs under a path as tko/parse.py
 * does, the job keyval, .autoserv_execute, and each test's keyval and
 * iterations.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KeyvalFormatError } from '../shared/statuslog/keyval.js';
import { StatusLogParseError } from '../shared/tko/parser.js';
import {
  ResultsPathError,
  findJobs,
  parseJob,
  parseResults,
  parseStatusLogFile,
  readIterations,
  readJobKeyval,
  serverJobStatusOf,
  summariseStatusLogFile,
} from '../shared/tko/results-dir.js';

const LOG = [
  'START\t----\t----\ttimestamp=100\t',
  '\tSTART\tdbench\tdbench\ttimestamp=101\t',
  '\t\tGOOD\tdbench\tdbench\ttimestamp=102\tcompleted successfully',
  '\tEND GOOD\tdbench\tdbench\ttimestamp=103\t',
  '\tSTART\tltp\tltp\ttimestamp=104\t',
  '\t\tFAIL\tltp\tltp\ttimestamp=105\t3 cases failed',
  '\tEND FAIL\tltp\tltp\ttimestamp=106\t',
  'END GOOD\t----\t----\ttimestamp=107\t',
  '',
].join('\n');

let root: string;

function write(rel: string, content: string): string {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content);
  return p;
}

/** A single machine's results directory. */
function job(rel: string, extra: { keyval?: string; autoserv?: string } = {}): string {
  write(`${rel}/status.log`, LOG);
  write(`${rel}/keyval`, extra.keyval ?? 'status_version=1\nhostname=host1\njob_started=90\njob_finished=110\n');
  if (extra.autoserv !== undefined) write(`${rel}/.autoserv_execute`, extra.autoserv);
  return path.join(root, rel);
}

describe('tko results directories', function () {
  beforeEach(function () {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'xentest-tko-dir-'));
  });
  afterEach(function () {
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('a single machine directory: tests in the reference order, job keyval, machine, SERVER_JOB from .autoserv_execute', function () {
    const dir = job('job1', { autoserv: 'autoserv -m host1\n0\n' });
    const found = findJobs(dir);
    expect(found).to.deep.equal({ kind: 'job', jobs: [{ dir, statusLog: path.join(dir, 'status.log') }] });
    const parsed = parseJob(found.jobs[0]!);
    expect(parsed.machine).to.equal('host1');
    expect(parsed.statusVersion).to.equal('1');
    expect(parsed.serverJobStatus).to.equal('GOOD');
    expect(parsed.jobKeyval).to.deep.equal({ status_version: '1', hostname: 'host1', job_started: '90', job_finished: '110' });
    expect(parsed.tests.map((t) => [t.testname, t.status, t.reason, t.started, t.finished])).to.deep.equal([
      ['SERVER_JOB', 'GOOD', '', 90, 110],
      ['CLIENT_JOB.0', 'GOOD', '', 100, 107],
      ['dbench', 'GOOD', 'completed successfully', 101, 103],
      ['ltp', 'FAIL', '3 cases failed', 104, 106],
    ]);
  });

  it('.autoserv_execute: exit 0 GOOD, another exit FAIL, a signal or an unreadable file ABORT, none ABORT', function () {
    const dir = path.join(root, 'j');
    fs.mkdirSync(dir);
    expect(serverJobStatusOf(dir)).to.equal('ABORT');
    for (const [content, status] of [
      ['cmd\n0\n', 'GOOD'],
      ['cmd\n256\n', 'FAIL'],
      ['cmd\n9\n', 'ABORT'],
      ['cmd\n', 'ABORT'],
      ['cmd\nnot a number\n', 'ABORT'],
    ] as const) {
      fs.writeFileSync(path.join(dir, '.autoserv_execute'), content);
      expect(serverJobStatusOf(dir), JSON.stringify(content)).to.equal(status);
    }
    // Found in a parent directory too (the top-level job directory).
    fs.mkdirSync(path.join(dir, 'host1'));
    fs.writeFileSync(path.join(dir, '.autoserv_execute'), 'cmd\n0\n');
    expect(serverJobStatusOf(path.join(dir, 'host1'))).to.equal('GOOD');
  });

  it('per test: <subdir>/keyval as written, and <subdir>/results/keyval iterations with {attr} and {perf}', function () {
    const dir = job('job1');
    write('job1/dbench/keyval', 'version=2\n# a comment\nsysinfo-cmdline=ro quiet\n');
    write(
      'job1/dbench/results/keyval',
      [
        'clients{attr}=4',
        'throughput{perf}=123.5',
        'latency=7',
        'label{perf}=not a number',
        'odd{meta}=skipped',
        '',
        'clients{attr}=8',
        'throughput{perf}=240',
        '',
        '',
        'throughput{perf}=3',
      ].join('\n') + '\n',
    );
    const parsed = parseJob(findJobs(dir).jobs[0]!);
    const dbench = parsed.tests.find((t) => t.testname === 'dbench')!;
    expect(dbench.keyval).to.deep.equal({ version: '2', 'sysinfo-cmdline': 'ro quiet' });
    expect(dbench.iterations).to.deep.equal([
      { attr: { clients: '4' }, perf: { throughput: 123.5, latency: 7 } },
      { attr: { clients: '8' }, perf: { throughput: 240 } },
      { attr: {}, perf: {} },
      { attr: {}, perf: { throughput: 3 } },
    ]);
    const ltp = parsed.tests.find((t) => t.testname === 'ltp')!;
    expect(ltp.keyval).to.deep.equal({});
    expect(ltp.iterations).to.deep.equal([]);
    expect(parsed.tests.find((t) => t.testname === 'CLIENT_JOB.0')!.keyval).to.deep.equal({});
  });

  it('readIterations: a missing file has none; leading and trailing whitespace is ignored', function () {
    expect(readIterations(path.join(root, 'nothing'))).to.deep.equal([]);
    const f = write('k', '  a{perf}=1  \n\t\nb{attr}= x \n');
    expect(readIterations(f)).to.deep.equal([
      { attr: {}, perf: { a: 1 } },
      { attr: { b: ' x' }, perf: {} },
    ]);
  });

  it('a subdir that leads out of the job directory is not read', function () {
    const dir = path.join(root, 'job1');
    write('job1/status.log', 'GOOD\t../outside\tt1\ttimestamp=1\t\n');
    write('outside/keyval', 'secret=1\n');
    const parsed = parseJob(findJobs(dir).jobs[0]!);
    expect(parsed.tests[1]!.subdir).to.equal('../outside');
    expect(parsed.tests[1]!.keyval).to.deep.equal({});
  });

  it('a multi-machine job: the machines named by .machines, each parsed with the top keyval merged in', function () {
    write('multi/.machines', 'host1\nhost2\n\nmissing\n');
    write('multi/keyval', 'label=nightly\nhostname=host1,host2\n');
    write('multi/.autoserv_execute', 'cmd\n256\n');
    write('multi/control', 'job.run()\n');
    job('multi/host1', { keyval: 'hostname=host1\nlabel=ignored\n' });
    job('multi/host2', { keyval: 'hostname=host2\n' });
    const found = findJobs(path.join(root, 'multi'));
    expect(found.kind).to.equal('tree');
    expect(found.jobs.map((j) => path.relative(root, j.dir))).to.deep.equal(['multi/host1', 'multi/host2']);
    const { jobs } = parseResults(path.join(root, 'multi'));
    expect(jobs.map((j) => [j.machine, j.serverJobStatus, j.jobKeyval.label, j.tests.length])).to.deep.equal([
      ['host1', 'FAIL', 'nightly', 4],
      ['host2', 'FAIL', 'nightly', 4],
    ]);
  });

  it('the job keyval: upper files win, except hostname, where the lower one wins', function () {
    write('top/.autoserv_execute', 'cmd\n0\n');
    write('top/keyval', 'a=top\nhostname=top\n');
    write('top/m1/keyval', 'a=lower\nb=lower\nhostname=m1\n');
    expect(Object.fromEntries(readJobKeyval(path.join(root, 'top/m1')))).to.deep.equal({ a: 'top', b: 'lower', hostname: 'm1' });
  });

  it('a directory of only subdirectories, and its own status.log if it has one', function () {
    job('sync/host1');
    job('sync/host2');
    const found = findJobs(path.join(root, 'sync'));
    expect(found.jobs.map((j) => path.relative(root, j.statusLog))).to.deep.equal(['sync/host1/status.log', 'sync/host2/status.log']);
    write('sync2/status.log', LOG);
    job('sync2/host1');
    fs.writeFileSync(path.join(root, 'sync2/.machines'), 'host1\n');
    expect(findJobs(path.join(root, 'sync2')).jobs.map((j) => path.relative(root, j.statusLog))).to.deep.equal([
      'sync2/status.log',
      'sync2/host1/status.log',
    ]);
  });

  it('a whole results tree, recursively, with stray files, the old `status` name, and links not followed', function () {
    job('results/1-nightly/host1');
    job('results/2-nightly');
    write('results/3-old/status', LOG);
    write('results/README', 'results of the lab\n');
    write('results/4-empty/debug/log', 'nothing parsed here\n');
    fs.symlinkSync(path.join(root, 'results'), path.join(root, 'results/loop'));
    const found = findJobs(path.join(root, 'results'));
    expect(found.kind).to.equal('tree');
    expect(found.jobs.map((j) => path.relative(root, j.statusLog))).to.deep.equal([
      'results/1-nightly/host1/status.log',
      'results/2-nightly/status.log',
      'results/3-old/status',
    ]);
    expect(parseResults(path.join(root, 'results')).jobs).to.have.length(3);
  });

  it('a status.log file: its directory is the job\'s', function () {
    const dir = job('job1', { autoserv: 'cmd\n0\n' });
    const found = findJobs(path.join(dir, 'status.log'));
    expect(found).to.deep.equal({ kind: 'file', jobs: [{ dir, statusLog: path.join(dir, 'status.log') }] });
  });

  it('a path that is not there is a ResultsPathError', function () {
    expect(() => findJobs(path.join(root, 'nope'))).to.throw(ResultsPathError, /no such file or directory/);
  });

  it('a bad keyval line is a KeyvalFormatError with its file and line', function () {
    const dir = job('job1', { keyval: 'hostname=h\nthis is not a keyval\n' });
    try {
      parseJob(findJobs(dir).jobs[0]!);
      expect.fail('no error');
    } catch (e) {
      expect(e).to.be.instanceOf(KeyvalFormatError);
      expect((e as KeyvalFormatError).file).to.equal(path.join(dir, 'keyval'));
      expect((e as KeyvalFormatError).line).to.equal(2);
    }
  });

  it('aborted_by in the job keyval words the END ABORTs of a log cut short', function () {
    const dir = path.join(root, 'cut');
    write('cut/status.log', 'START\t----\t----\ttimestamp=100\t\n\tSTART\tltp\tltp\ttimestamp=101\t\n');
    write('cut/keyval', 'aborted_by=alice\naborted_on=1369257626\n');
    const parsed = parseJob(findJobs(dir).jobs[0]!, { tz: 'UTC' });
    expect(parsed.tests.map((t) => [t.testname, t.status, t.reason])).to.deep.equal([
      ['SERVER_JOB', 'ABORT', ''],
      ['CLIENT_JOB.0', 'ABORT', 'Job aborted by alice at May 22 21:20:26'],
      ['ltp', 'ABORT', 'Job aborted by alice at May 22 21:20:26'],
    ]);
  });

  it('reads a large log in pieces: the whole parse and the summary agree, multi-byte characters across pieces included', function () {
    const lines: string[] = [];
    for (let i = 0; i < 20000; i++) {
      lines.push(`START\tt${i}\tt${i}\ttimestamp=${1700000000 + i}\t`);
      lines.push(`\tWARN\t----\t----\ttimestamp=${1700000000 + i}\tnaïve ünïcödé ✓ ${'é'.repeat(i % 50)}`);
      lines.push(`END WARN\tt${i}\tt${i}\ttimestamp=${1700000000 + i}\t`);
    }
    const f = write('big/status.log', lines.join('\n') + '\n');
    const tests = parseStatusLogFile(f);
    expect(tests).to.have.length(20001);
    expect(tests[5000]!.reason).to.equal(`naïve ünïcödé ✓ ${'é'.repeat(4999 % 50)}`);
    const summary = summariseStatusLogFile(f);
    expect(summary.tests).to.equal(20001);
    expect(summary.byStatus.WARN).to.equal(20000);
    expect(summary.lines).to.equal(60000);
  });

  it('a log the reference refuses is a StatusLogParseError naming the file', function () {
    const f = write('bad/status.log', 'GOOD\t----\tt\ttimestamp=1\t\nPASS\t----\tt\ttimestamp=2\t\n');
    expect(() => parseStatusLogFile(f)).to.throw(StatusLogParseError, new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: `));
  });
});
