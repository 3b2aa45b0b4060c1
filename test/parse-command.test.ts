/** `xentest parse`, run as a user runs it. */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { hasStackTrace, runXentest } from './support/cli.js';

const LOG = [
  'INFO\t----\t----\tkernel=6.1.0-13-amd64-autotest\ttimestamp=1700000000\t',
  'START\t----\t----\ttimestamp=1700000001\t',
  '\tSTART\tsieve\tsieve\ttimestamp=1700000002\t',
  '\t\tGOOD\tsieve\tsieve\ttimestamp=1700000003\tcompleted successfully',
  '\tEND GOOD\tsieve\tsieve\ttimestamp=1700000004\t',
  '\tSTART\tsettime\tsettime\ttimestamp=1700000005\t',
  '\t\tFAIL\tsettime\tsettime\ttimestamp=1700000006\tDOM0_SETTIME: Operation not permitted',
  '\tEND FAIL\tsettime\tsettime\ttimestamp=1700000007\t',
  'END GOOD\t----\t----\ttimestamp=1700000008\t',
  '',
].join('\n');

describe('xentest parse', function () {
  this.timeout(30000);
  let root: string;
  beforeEach(function () {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'xentest-parse-cmd-'));
  });
  afterEach(function () {
    fs.rmSync(root, { recursive: true, force: true });
  });

  function jobDir(rel: string, hostname: string): string {
    const dir = path.join(root, rel);
    fs.mkdirSync(path.join(dir, 'sieve', 'results'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'status.log'), LOG);
    fs.writeFileSync(path.join(dir, 'keyval'), `status_version=1\nhostname=${hostname}\n`);
    fs.writeFileSync(path.join(dir, '.autoserv_execute'), 'autoserv\n0\n');
    fs.writeFileSync(path.join(dir, 'sieve', 'keyval'), 'version=1\n');
    fs.writeFileSync(path.join(dir, 'sieve', 'results', 'keyval'), 'primes{perf}=78498\nlimit{attr}=1000000\n\n');
    return dir;
  }

  it('--json on a status.log: {"tests": [[testname, status, reason], ...]} in the reference order', function () {
    const dir = jobDir('job', 'host1');
    const r = runXentest(['parse', '--json', path.join(dir, 'status.log')]);
    expect(r.status, r.stderr).to.equal(0);
    expect(JSON.parse(r.stdout)).to.deep.equal({
      tests: [
        ['SERVER_JOB', 'GOOD', ''],
        ['CLIENT_JOB.0', 'GOOD', ''],
        ['sieve', 'GOOD', 'completed successfully'],
        ['settime', 'FAIL', 'DOM0_SETTIME: Operation not permitted'],
      ],
    });
  });

  it('--json --detail on a job directory: objects with subdir, kernel, times, keyval and iterations', function () {
    const dir = jobDir('job', 'host1');
    const r = runXentest(['parse', dir, '--json', '--detail']);
    expect(r.status, r.stderr).to.equal(0);
    const out = JSON.parse(r.stdout) as { tests: Array<Record<string, unknown>> };
    expect(out.tests).to.have.length(4);
    expect(out.tests[2]).to.deep.equal({
      testname: 'sieve',
      status: 'GOOD',
      reason: 'completed successfully',
      subdir: 'sieve',
      // hash: md5("6.1.0-13-amd64"), as Python's hashlib gives it
      kernel: { base: '6.1.0-13-amd64', patches: [], hash: '3c2dbfb8bea50ca436d614ce6c2d11d0' },
      started: 1700000002,
      finished: 1700000004,
      keyval: { version: '1' },
      iterations: [{ attr: { limit: '1000000' }, perf: { primes: 78498 } }],
    });
    expect(out.tests[1]!.subdir).to.equal(null);
  });

  it('--json on a directory of jobs: {"jobs": [{"dir", "machine", "tests"}]}', function () {
    jobDir('results/night1/host1', 'host1');
    jobDir('results/night1/host2', 'host2');
    const r = runXentest(['parse', '--json', path.join(root, 'results')]);
    expect(r.status, r.stderr).to.equal(0);
    const out = JSON.parse(r.stdout) as { jobs: Array<{ dir: string; machine: string; tests: unknown[] }> };
    expect(out.jobs.map((j) => [path.relative(root, j.dir), j.machine, j.tests.length])).to.deep.equal([
      ['results/night1/host1', 'host1', 4],
      ['results/night1/host2', 'host2', 4],
    ]);
  });

  it('without --json: a table and a count per status', function () {
    const dir = jobDir('job', 'host1');
    const r = runXentest(['parse', dir]);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.equal(
      [
        'TEST          STATUS  REASON',
        'SERVER_JOB    GOOD',
        'CLIENT_JOB.0  GOOD',
        'sieve         GOOD    completed successfully',
        'settime       FAIL    DOM0_SETTIME: Operation not permitted',
        '4 tests: 1 FAIL, 3 GOOD',
        '',
      ].join('\n'),
    );
    const detail = runXentest(['parse', '--detail', dir]);
    expect(detail.stdout.split('\n')[0]).to.match(/^TEST +STATUS +SUBDIR +KERNEL +STARTED +FINISHED +REASON$/);
    expect(detail.stdout).to.include('2023-11-14 22:13:22Z');
  });

  it('a log autotest\'s parser rejects: FILE:LINE, what is wrong and what to do, exit 2, no stack trace', function () {
    const file = path.join(root, 'status.log');
    fs.writeFileSync(file, 'GOOD\t----\tt1\ttimestamp=1\t\nEND\t----\t----\ttimestamp=2\t\n');
    const r = runXentest(['parse', file]);
    expect(r.status).to.equal(2);
    expect(r.stdout).to.equal('');
    expect(r.stderr).to.match(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: error: "END" is not a status`));
    expect(r.stderr).to.include('hint: ');
    expect(hasStackTrace(r.stderr)).to.equal(false);
  });

  it('a bad keyval line: its file and line, exit 2', function () {
    const dir = jobDir('job', 'host1');
    fs.writeFileSync(path.join(dir, 'sieve', 'keyval'), 'version=1\nnot a keyval line\n');
    const r = runXentest(['parse', '--detail', dir]);
    expect(r.status).to.equal(2);
    expect(r.stderr).to.include(`${path.join(dir, 'sieve', 'keyval')}:2: error: Invalid format line: not a keyval line`);
    expect(hasStackTrace(r.stderr)).to.equal(false);
  });

  it('a path that is not there, or holds no status.log: exit 2 with a hint', function () {
    const missing = runXentest(['parse', path.join(root, 'nope')]);
    expect(missing.status).to.equal(2);
    expect(missing.stderr).to.match(/no such file or directory\n {2}hint: /);
    fs.mkdirSync(path.join(root, 'empty', 'sub'), { recursive: true });
    const empty = runXentest(['parse', path.join(root, 'empty')]);
    expect(empty.status).to.equal(2);
    expect(empty.stderr).to.match(/no status\.log/);
    expect(hasStackTrace(missing.stderr + empty.stderr)).to.equal(false);
  });

  it('usage mistakes exit 64', function () {
    for (const args of [['parse'], ['parse', 'a', 'b'], ['parse', '--jsn', 'x']]) {
      const r = runXentest(args);
      expect(r.status, args.join(' ')).to.equal(64);
      expect(hasStackTrace(r.stderr)).to.equal(false);
    }
    expect(runXentest(['help']).stdout).to.include('xentest parse PATH [--json] [--detail]');
  });
});
