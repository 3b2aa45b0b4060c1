/**
 * `xentest run`, the runner in each domain, end to end with real parts: test
 * suites packed by the system tar and served by a real HTTP server on
 * 127.0.0.1, the real `xentest` executable as a child process, a temporary
 * shared directory laid out as dom0's dispatch step leaves it.
 */
import { expect } from 'chai';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import { join } from 'node:path';
import { readKeyval } from '../shared/statuslog/keyval.js';
import { XENTEST_BIN } from './support/cli.js';

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

interface Running {
  child: ChildProcess;
  done: Promise<Finished>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, test: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Is the process gone (or only a zombie waiting to be reaped)? */
function processGone(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

describe('xentest run (the runner in a domain)', function () {
  this.timeout(120_000);

  let root: string;
  let shared: string;
  let www: string;
  let server: http.Server;
  let port: number;
  /** Where test commands leave marks for the test to see (outside the shared directory). */
  let marks: string;

  before(async () => {
    server = http.createServer((req, res) => {
      const file = join(www, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
      if (!file.startsWith(www + '/') || !fs.existsSync(file)) {
        res.writeHead(404).end('not found');
        return;
      }
      res.writeHead(200, { 'content-length': fs.statSync(file).size });
      fs.createReadStream(file).pipe(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  beforeEach(() => {
    root = fs.mkdtempSync(join(os.tmpdir(), 'xentest-runner-'));
    shared = join(root, 'shared');
    www = join(root, 'www');
    marks = join(root, 'marks');
    for (const d of [shared, www, marks]) fs.mkdirSync(d, { recursive: true });
    // A test suite as a release tarball: one top directory, made by the system tar.
    const src = join(root, 'src', 'suite-1.0');
    fs.mkdirSync(src, { recursive: true });
    fs.writeFileSync(join(src, 'build.sh'), 'echo building the suite\necho built > built.txt\n');
    fs.writeFileSync(join(src, 'runsuite'), '#!/bin/sh\n[ -e built.txt ] || { echo not built; exit 9; }\nmkdir -p ../logs/suite\necho "suite output" > ../logs/suite/result.txt\nln -sf /etc/passwd ../logs/suite/sneaky\necho all 12 cases passed\n', { mode: 0o755 });
    execFileSync('tar', ['-czf', join(www, 'suite-1.0.tar.gz'), '-C', join(root, 'src'), 'suite-1.0']);
  });

  afterEach(() => {
    fs.rmSync(root, { recursive: true, force: true });
  });

  interface TestDef {
    name: string;
    run: string;
    build?: string;
    source?: string;
    testDir?: string;
    logDir?: string;
    timeout?: number;
    unprivileged?: 'fail';
  }

  function controlFile(domains: Array<{ host: string; tests: TestDef[] }>): string {
    const tests = new Map<string, TestDef>();
    for (const d of domains) for (const t of d.tests) tests.set(t.name, t);
    const lines = [
      '[Preferences]',
      'xen-tree = xen-unstable',
      `shared_dir = ${shared}`,
      '',
      '[Locations]',
      'xen-unstable = http://127.0.0.1:1/xen-unstable.tar.gz',
      '',
    ];
    for (const t of tests.values()) {
      lines.push(
        `[${t.name}]`,
        `source_url = ${t.source ?? `http://127.0.0.1:${port}/suite-1.0.tar.gz`}`,
        `test_dir = ${t.testDir ?? 'suite-1.0'}`,
        `build_command = ${t.build ?? 'sh build.sh'}`,
        'install_command = echo nothing to install',
        `run_command = ${t.run}`,
        ...(t.logDir ? [`log_dir = ${t.logDir}`] : []),
        ...(t.timeout ? [`timeout = ${t.timeout}`] : []),
        ...(t.unprivileged ? [`unprivileged = ${t.unprivileged}`] : []),
        '',
      );
    }
    domains.forEach((d, i) => {
      lines.push(`[XENVM${i}]`, `name = ${d.host}`, `tempdir = ${join(root, 'tmp', d.host)}`, 'config =');
      d.tests.forEach((t, n) => lines.push(`test${n + 1} = ${t.name}`));
      lines.push('');
    });
    return lines.join('\n');
  }

  /** What dom0's dispatch step leaves: the domain's directory, the night id, the control copy. */
  function dispatch(host: string, text: string): string {
    const dir = join(shared, host);
    fs.mkdirSync(dir, { recursive: true });
    fs.mkdirSync(join(root, 'tmp', host), { recursive: true });
    fs.writeFileSync(join(dir, 'night'), '20250101T000000Z\n');
    fs.writeFileSync(join(dir, 'xentest.conf'), text);
    return dir;
  }

  /** A domain's own filesystem: what /proc/xen/capabilities says (undefined: not there). */
  function domainRoot(capabilities: string | undefined): string {
    const dom = join(root, 'domroot');
    fs.mkdirSync(join(dom, 'proc/xen'), { recursive: true });
    if (capabilities !== undefined) fs.writeFileSync(join(dom, 'proc/xen/capabilities'), capabilities);
    return dom;
  }

  function startRunner(args: string[], options: { nodeArgs?: string[]; env?: NodeJS.ProcessEnv } = {}): Running {
    const t0 = Date.now();
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), XENTEST_BIN, 'run', '--shared-dir', shared, ...args], {
      env: { ...process.env, ...options.env, XENTEST_ROOT: options.env?.XENTEST_ROOT ?? domainRoot('control_d') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const done = new Promise<Finished>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 })),
    );
    return { child, done };
  }

  /** status.log lines without their timestamps: "START\tPass\tPass", "END GOOD\tPass\tPass\t<reason>"... */
  function statusLines(host: string): string[] {
    const text = fs.readFileSync(join(shared, host, 'results', 'status.log'), 'utf8');
    return text
      .split('\n')
      .filter((l) => /^\t*[A-Z]/.test(l))
      .map((l) => l.replace(/^\t+/, '').split('\t').filter((f) => !/^[a-z_]+=/.test(f)).join('\t').replace(/\t$/, ''));
  }

  function keyval(host: string, test: string): Map<string, unknown> {
    return readKeyval(join(shared, host, 'results', test, 'keyval'));
  }

  it('runs a passing and a failing test, records both, and removes the control copy last', async () => {
    const dir = dispatch(
      'bob',
      controlFile([
        {
          host: 'bob',
          tests: [
            { name: 'Suite', run: `./runsuite && echo ran >> ${marks}/suite.count`, logDir: 'logs/suite' },
            { name: 'Broken', run: 'echo "case 7: expected 4, got 5"; exit 3' },
          ],
        },
      ]),
    );
    const r = await startRunner(['--hostname', 'bob', '--wait', '0']).done;
    expect(r.code, r.stdout + r.stderr).to.equal(1);
    expect(r.stdout).to.include('1 of 2 tests GOOD');

    expect(statusLines('bob')).to.deep.equal([
      'START\tSuite\tSuite',
      'END GOOD\tSuite\tSuite\tcompleted successfully',
      'START\tBroken\tBroken',
      'END FAIL\tBroken\tBroken\trun_command exited with status 3 after ' + statusLines('bob')[3]!.split(' after ')[1],
    ]);
    expect(statusLines('bob')[3]).to.match(/exited with status 3 after [\d.]+ (ms|s): case 7: expected 4, got 5$/);

    const good = keyval('bob', 'Suite');
    expect(good.get('status')).to.equal('GOOD');
    expect(good.get('domain')).to.equal('bob');
    expect(good.get('privileged')).to.equal('yes');
    expect(good.get('expected')).to.equal('pass');
    expect(good.get('exit_status')).to.equal(0);
    expect(good.get('logs_collected')).to.equal(1);
    for (const k of ['fetch_seconds', 'build_seconds', 'install_seconds', 'run_seconds', 'total_seconds']) expect(good.has(k), k).to.equal(true);
    expect(String(good.get('source_identity'))).to.match(/^sha256:[0-9a-f]{64}$/);
    const bad = keyval('bob', 'Broken');
    expect(bad.get('status')).to.equal('FAIL');
    expect(bad.get('exit_status')).to.equal(3);

    // The suite's logs, without the link it planted; the phase logs; the unpacked tree where test_dir says.
    expect(fs.readFileSync(join(dir, 'results/Suite/logs/result.txt'), 'utf8')).to.equal('suite output\n');
    expect(fs.existsSync(join(dir, 'results/Suite/logs/sneaky'))).to.equal(false);
    expect(fs.readFileSync(join(dir, 'results/Suite/debug/build.log'), 'utf8')).to.include('building the suite');
    expect(fs.readFileSync(join(dir, 'results/Suite/debug/run.log'), 'utf8')).to.include('all 12 cases passed');
    expect(fs.readFileSync(join(dir, 'results/Suite/debug/runner.log'), 'utf8')).to.include('skipped sneaky (symbolic link)');
    expect(fs.existsSync(join(root, 'tmp/bob/suite-1.0/built.txt'))).to.equal(true);
    expect(readKeyval(join(dir, 'results/keyval')).get('hostname')).to.equal('bob');

    expect(fs.existsSync(join(dir, 'xentest.conf'))).to.equal(false);
    expect(fs.existsSync(join(dir, 'runner.lock'))).to.equal(false);
    const journal = JSON.parse(fs.readFileSync(join(dir, 'runner.json'), 'utf8')) as { outcome?: { status: string } };
    expect(journal.outcome?.status).to.equal('FAIL');

    // Run again: the copy is gone, so there is nothing to do and nothing is repeated.
    const again = await startRunner(['--hostname', 'bob', '--wait', '0']).done;
    expect(again.code).to.equal(0);
    expect(again.stdout).to.include('no work for bob');
    expect(fs.readFileSync(join(marks, 'suite.count'), 'utf8')).to.equal('ran\n');
  });

  it('a test that cannot be fetched, placed or built is ERROR, and the next test still runs', async () => {
    dispatch(
      'bob',
      controlFile([
        {
          host: 'bob',
          tests: [
            { name: 'Missing', run: 'true', source: `http://127.0.0.1:${port}/nothing-here.tar.gz` },
            { name: 'WrongDir', run: 'true', testDir: 'suite-2.0' },
            { name: 'NoBuild', run: 'true', build: 'echo "make: *** No rule to make target"; exit 2' },
            { name: 'FromDirectory', run: './runsuite', source: join(root, 'src', 'suite-1.0'), testDir: 'suite-copy', logDir: 'logs/suite' },
          ],
        },
      ]),
    );
    const r = await startRunner(['--hostname', 'bob', '--wait', '0']).done;
    expect(r.code).to.equal(1);
    const ends = statusLines('bob').filter((l) => l.startsWith('END'));
    expect(ends[0]).to.match(/^END ERROR\tMissing\tMissing\tfetch: http:\/\/127\.0\.0\.1:\d+\/nothing-here\.tar\.gz: .*404/);
    expect(ends[1]).to.equal(
      'END ERROR\tWrongDir\tWrongDir\ttest_dir suite-2.0 is not a directory in ' +
        join(root, 'tmp', 'bob') +
        ' after unpacking http://127.0.0.1:' + port + '/suite-1.0.tar.gz, which created suite-1.0 (set test_dir to the directory the archive creates)',
    );
    expect(ends[2]).to.match(/^END ERROR\tNoBuild\tNoBuild\tbuild_command exited with status 2 after .*: make: \*\*\* No rule to make target$/);
    // A directory source is put at tempdir/test_dir; build.sh ran there first.
    expect(ends[3]).to.equal('END GOOD\tFromDirectory\tFromDirectory\tcompleted successfully');
    expect(fs.readFileSync(join(shared, 'bob/results/FromDirectory/logs/result.txt'), 'utf8')).to.equal('suite output\n');
  });

  it('waits for a control copy that appears 2 s later, then runs', async () => {
    const running = startRunner(['--hostname', 'bob', '--wait', '30']);
    await sleep(2000);
    expect(running.child.exitCode).to.equal(null);
    dispatch('bob', controlFile([{ host: 'bob', tests: [{ name: 'Suite', run: './runsuite' }] }]));
    const r = await running.done;
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.include('waiting up to 30 s');
    expect(r.ms).to.be.lessThan(8000);
    expect(statusLines('bob')).to.deep.equal(['START\tSuite\tSuite', 'END GOOD\tSuite\tSuite\tcompleted successfully']);
  });

  it('exits 0 with "no work" when no control copy comes within --wait', async () => {
    const r = await startRunner(['--hostname', 'bob', '--wait', '1']).done;
    expect(r.code).to.equal(0);
    expect(r.stdout).to.include('no work for bob');
    expect(r.ms).to.be.within(900, 6000);
    expect(fs.existsSync(join(shared, 'bob'))).to.equal(false);
  });

  it('a hostname no section names: a clear error in that domain\'s results, its copy removed, other domains untouched', async () => {
    const text = controlFile([
      { host: 'bob', tests: [{ name: 'Suite', run: './runsuite' }] },
      { host: 'alice', tests: [{ name: 'Suite', run: './runsuite' }] },
    ]);
    const bob = dispatch('bob', text);
    const carol = dispatch('carol', text);
    const r = await startRunner(['--hostname', 'carol', '--wait', '0']).done;
    expect(r.code).to.equal(1);
    expect(r.stderr).to.include('no XENVM section').and.include('carol');
    const lines = statusLines('carol');
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(/^ABORT\t----\txentest\.run\tcarol: no XENVM section .* name = carol; the names it has are: bob \(\[XENVM0\]\), alice \(\[XENVM1\]\)/);
    expect(fs.readFileSync(join(carol, 'results/ERROR.txt'), 'utf8')).to.include('the names it has are: bob');
    expect(fs.existsSync(join(carol, 'xentest.conf'))).to.equal(false);
    expect(fs.readdirSync(bob).sort()).to.deep.equal(['night', 'xentest.conf']);
  });

  it('killed (SIGKILL) in the middle of the second test and started again: the first is not run again, the second is, every line once', async () => {
    const secondCount = join(marks, 'second.count');
    const pidFile = join(marks, 'second.pid');
    dispatch(
      'bob',
      controlFile([
        {
          host: 'bob',
          tests: [
            { name: 'First', run: `echo ran >> ${marks}/first.count` },
            {
              name: 'Second',
              // The first time it hangs (and is killed with the runner); the second time it passes.
              run: `echo $$ > ${pidFile}; echo ran >> ${secondCount}; if [ $(wc -l < ${secondCount}) -eq 1 ]; then sleep 60; fi; echo second done`,
            },
            { name: 'Third', run: `echo ran >> ${marks}/third.count` },
          ],
        },
      ]),
    );
    const first = startRunner(['--hostname', 'bob', '--wait', '0']);
    await until('the second test to start', () => fs.existsSync(secondCount));
    const leftover = Number(fs.readFileSync(pidFile, 'utf8'));
    first.child.kill('SIGKILL');
    expect((await first.done).signal).to.equal('SIGKILL');
    expect(processGone(leftover), 'the killed test keeps running until the next runner kills it').to.equal(false);

    const r = await startRunner(['--hostname', 'bob', '--wait', '0']).done;
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.include('killed process group');
    expect(processGone(leftover)).to.equal(true);
    expect(fs.readFileSync(join(marks, 'first.count'), 'utf8')).to.equal('ran\n');
    expect(fs.readFileSync(secondCount, 'utf8')).to.equal('ran\nran\n');
    expect(fs.readFileSync(join(marks, 'third.count'), 'utf8')).to.equal('ran\n');
    expect(statusLines('bob')).to.deep.equal([
      'START\tFirst\tFirst',
      'END GOOD\tFirst\tFirst\tcompleted successfully',
      'START\tSecond\tSecond',
      'END GOOD\tSecond\tSecond\tcompleted successfully',
      'START\tThird\tThird',
      'END GOOD\tThird\tThird\tcompleted successfully',
    ]);
    expect(keyval('bob', 'Second').get('attempt')).to.equal(2);
    expect(fs.existsSync(join(shared, 'bob', 'xentest.conf'))).to.equal(false);
  });

  it('gives up on a test interrupted three times (ABORT) and goes on with the next', async () => {
    const count = join(marks, 'crashy.count');
    dispatch(
      'bob',
      controlFile([
        {
          host: 'bob',
          tests: [
            { name: 'Crashy', run: `echo ran >> ${count}; sleep 60` },
            { name: 'Next', run: 'echo fine' },
          ],
        },
      ]),
    );
    for (let n = 1; n <= 3; n++) {
      const running = startRunner(['--hostname', 'bob', '--wait', '0']);
      await until(`entry ${n} of the test`, () => fs.existsSync(count) && fs.readFileSync(count, 'utf8').split('\n').length - 1 === n);
      running.child.kill('SIGKILL');
      await running.done;
    }
    const r = await startRunner(['--hostname', 'bob', '--wait', '0']).done;
    expect(r.code).to.equal(1);
    expect(fs.readFileSync(count, 'utf8')).to.equal('ran\nran\nran\n');
    expect(statusLines('bob')).to.deep.equal([
      'START\tCrashy\tCrashy',
      'END ABORT\tCrashy\tCrashy\tinterrupted 3 times; giving up on this step',
      'START\tNext\tNext',
      'END GOOD\tNext\tNext\tcompleted successfully',
    ]);
    expect(fs.existsSync(join(shared, 'bob', 'xentest.conf'))).to.equal(false);
  });

  it('kills a test that hangs at its timeout and runs the next one', async () => {
    dispatch(
      'bob',
      controlFile([
        {
          host: 'bob',
          tests: [
            { name: 'Hangs', run: 'echo going to sleep; sleep 300', timeout: 2 },
            { name: 'After', run: 'echo fine' },
          ],
        },
      ]),
    );
    const r = await startRunner(['--hostname', 'bob', '--wait', '0']).done;
    expect(r.code).to.equal(1);
    expect(r.ms).to.be.lessThan(20_000);
    const lines = statusLines('bob');
    expect(lines[1]).to.equal('END FAIL\tHangs\tHangs\trun_command killed after the 2 s timeout: going to sleep');
    expect(lines.slice(2)).to.deep.equal(['START\tAfter\tAfter', 'END GOOD\tAfter\tAfter\tcompleted successfully']);
    expect(keyval('bob', 'Hangs').get('timed_out')).to.equal(1);
  });

  describe('a test that must fail in an unprivileged domain (unprivileged = fail)', () => {
    const refused = { name: 'SetTime', run: 'echo "settimeofday: Operation not permitted"; exit 1', unprivileged: 'fail' as const };
    const allowed = { name: 'SetTimeAllowed', run: 'echo clock set', unprivileged: 'fail' as const };

    it('is GOOD when it fails in an unprivileged domain, FAIL when it passes there', async () => {
      dispatch('guest', controlFile([{ host: 'guest', tests: [refused, allowed] }]));
      const r = await startRunner(['--hostname', 'guest', '--wait', '0'], { env: { XENTEST_ROOT: domainRoot('') } }).done;
      expect(r.code).to.equal(1);
      const lines = statusLines('guest');
      expect(lines[1]).to.match(
        /^END GOOD\tSetTime\tSetTime\tfailed as expected in an unprivileged domain: exited with status 1 after .*: settimeofday: Operation not permitted$/,
      );
      expect(lines[3]).to.equal('END FAIL\tSetTimeAllowed\tSetTimeAllowed\tshould have failed in an unprivileged domain: run_command exited with status 0');
      expect(keyval('guest', 'SetTime').get('privileged')).to.equal('no');
      expect(keyval('guest', 'SetTime').get('expected')).to.equal('fail');
    });

    it('is FAIL when it fails in a privileged domain (dom0)', async () => {
      dispatch('dom0', controlFile([{ host: 'dom0', tests: [refused] }]));
      const r = await startRunner(['--hostname', 'dom0', '--wait', '0'], { env: { XENTEST_ROOT: domainRoot('control_d\n') } }).done;
      expect(r.code).to.equal(1);
      expect(statusLines('dom0')[1]).to.match(/^END FAIL\tSetTime\tSetTime\trun_command exited with status 1 .*Operation not permitted$/);
      expect(keyval('dom0', 'SetTime').get('privileged')).to.equal('yes');
    });

    it('counts as privileged, and says so, when /proc/xen/capabilities is missing', async () => {
      dispatch('plain', controlFile([{ host: 'plain', tests: [refused] }]));
      const r = await startRunner(['--hostname', 'plain', '--wait', '0'], { env: { XENTEST_ROOT: domainRoot(undefined) } }).done;
      expect(r.code).to.equal(1);
      expect(r.stdout).to.include('treated as privileged');
      expect(keyval('plain', 'SetTime').get('privileged')).to.equal('unknown');
      expect(statusLines('plain')[1]).to.match(/^END FAIL/);
    });
  });

  it('streams 200 MB of test output to the log and keeps the runner\'s memory low', async () => {
    dispatch('bob', controlFile([{ host: 'bob', tests: [{ name: 'Chatty', run: 'yes "a line of test output that goes on and on" | head -c 200000000; echo; echo last line' }] }]));
    const r = await startRunner(['--hostname', 'bob', '--wait', '0'], { nodeArgs: ['--max-old-space-size=64'] }).done;
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    const log = join(shared, 'bob/results/Chatty/debug/run.log');
    expect(fs.statSync(log).size).to.be.greaterThan(200_000_000);
    const peak = /runner peak memory \(VmHWM\): (\d+) MiB/.exec(r.stdout);
    expect(peak, r.stdout).to.not.equal(null);
    expect(Number(peak![1])).to.be.lessThan(100);
  });

  it('waits out a shared directory that is briefly unavailable (renamed away for 2 s while a test runs)', async () => {
    const go = join(marks, 'outage.go');
    dispatch(
      'bob',
      controlFile([
        {
          host: 'bob',
          tests: [
            { name: 'DuringOutage', run: `touch ${go}; sleep 0.5; echo done` },
            { name: 'AfterOutage', run: 'echo fine' },
          ],
        },
      ]),
    );
    const running = startRunner(['--hostname', 'bob', '--wait', '0']);
    await until('the first test to run', () => fs.existsSync(go));
    fs.renameSync(shared, shared + '.away');
    await sleep(2000);
    // A runner that had created a fresh tree in its place would make this rename fail.
    expect(fs.existsSync(shared)).to.equal(false);
    fs.renameSync(shared + '.away', shared);
    const r = await running.done;
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.include('shared directory unavailable').and.include('shared directory back');
    expect(statusLines('bob')).to.deep.equal([
      'START\tDuringOutage\tDuringOutage',
      'END GOOD\tDuringOutage\tDuringOutage\tcompleted successfully',
      'START\tAfterOutage\tAfterOutage',
      'END GOOD\tAfterOutage\tAfterOutage\tcompleted successfully',
    ]);
    expect(keyval('bob', 'DuringOutage').get('status')).to.equal('GOOD');
    expect(fs.existsSync(join(shared, 'bob/xentest.conf'))).to.equal(false);
  });

  it('a second runner for the same domain exits at once, saying another one runs', async () => {
    const go = join(marks, 'first.go');
    dispatch('bob', controlFile([{ host: 'bob', tests: [{ name: 'Slow', run: `touch ${go}; sleep 3; echo done` }] }]));
    const first = startRunner(['--hostname', 'bob', '--wait', '0']);
    await until('the first runner to start its test', () => fs.existsSync(go));
    const second = await startRunner(['--hostname', 'bob', '--wait', '0']).done;
    expect(second.code).to.equal(0);
    expect(second.stdout).to.match(/another runner for bob is running \(pid \d+/);
    const r = await first.done;
    expect(r.code).to.equal(0);
    expect(statusLines('bob')).to.deep.equal(['START\tSlow\tSlow', 'END GOOD\tSlow\tSlow\tcompleted successfully']);
  });

  it('refuses a domain directory that is a symbolic link, and a hostname with path characters', async () => {
    const elsewhere = dispatch('alice', controlFile([{ host: 'alice', tests: [{ name: 'Suite', run: './runsuite' }] }]));
    fs.symlinkSync(elsewhere, join(shared, 'mallory'));
    const r = await startRunner(['--hostname', 'mallory', '--wait', '0']).done;
    expect(r.code).to.equal(1);
    expect(r.stderr).to.include('is a symbolic link');
    expect(fs.readdirSync(elsewhere).sort()).to.deep.equal(['night', 'xentest.conf']);

    const bad = await startRunner(['--hostname', '../alice', '--wait', '0']).done;
    expect(bad.code).to.equal(64);
    expect(bad.stderr).to.include('is not a hostname');
  });
});
