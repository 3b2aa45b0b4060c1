/**
 * Whole nights with guests on the simulated Xen host: dom0 dispatches, starts
 * the guests with `xl create`, the runner in every domain (started as its
 * systemd unit would be) runs its tests, dom0 waits and collects. Each case
 * disturbs one part (a guest that does not start, one whose runner never
 * starts, a test that hangs, a guest whose hostname is not its section's
 * name, a runner killed mid-test, the shared directory going away, big
 * output) and checks the night's status.log, its journal and the collected
 * results.
 */
import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { NightData, StepRecord } from '../agent/pipeline/journal.js';
import { copyDomainResults } from '../agent/pipeline/steps/domains.js';
import { readKeyval } from '../shared/statuslog/keyval.js';
import { NightLab, TarballServer, type LabOptions } from '../scripts/simhost/lab.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Wait for `test` while the night runs; a night that ends (or fails) first is an error, with what it said. */
async function duringNight(night: Promise<unknown>, what: string, test: () => boolean, timeoutMs = 60_000): Promise<void> {
  let ended: string | undefined;
  night.then(
    () => (ended = 'the night ended'),
    (e: unknown) => (ended = `the night failed: ${(e as Error).message}`),
  );
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (ended !== undefined) throw new Error(`${ended} before ${what}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function journalOf(dir: string): NightData {
  return JSON.parse(readFileSync(join(dir, 'journal.json'), 'utf8')) as NightData;
}

function step(j: NightData, name: string): StepRecord {
  const s = j.steps.find((x) => x.name === name);
  if (!s) throw new Error(`no step ${name} in the journal`);
  return s;
}

function stepStatuses(j: NightData): Record<string, string> {
  return Object.fromEntries(j.steps.map((s) => [s.name, `${s.state}/${s.status ?? '-'}`]));
}

/** A status.log's lines without timestamps and durations (their indentation kept), so they can be compared. */
function statusLines(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.replace(/\ttimestamp=\d+\tlocaltime=[^\t]*/, '').replace(/\tduration_ms=\d+/, '').replace(/\texit_status=\d+/, '').replace(/\t$/, ''));
}

/** The timestamp= of the first line matching `re`. */
function timestampOf(file: string, re: RegExp): number {
  const line = readFileSync(file, 'utf8').split('\n').find((l) => re.test(l));
  const m = line ? /\ttimestamp=(\d+)/.exec(line) : null;
  if (!m) throw new Error(`no line matching ${re} with a timestamp in ${file}`);
  return Number(m[1]);
}

const DOMAIN_STEPS = ['domains.dispatch', 'domains.start', 'domains.wait', 'domains.collect'];

describe('a night with guests on the simulated Xen host', function () {
  this.timeout(90_000);
  let root: string;
  let server: TarballServer;
  /** A directory test source: the runner copies it to tempdir/suite, and the test's run_command runs there. */
  let suite: string;
  /** Where test commands leave marks for the test to see (outside the shared directory). */
  let marks: string;
  const labs: NightLab[] = [];

  const newLab = (options: LabOptions): NightLab => {
    const lab = new NightLab(join(root, 'lab'), server, options);
    labs.push(lab);
    return lab;
  };
  const testSection = (run: string, extra: Record<string, string> = {}): Record<string, string> => ({
    source_url: suite,
    test_dir: 'suite',
    run_command: run,
    ...extra,
  });
  const collected = (dir: string, domain: string, ...file: string[]): string => join(dir, 'domains', domain, ...file);

  beforeEach(async () => {
    root = mkdtempSync(join(tmpdir(), 'xentest-night-domains-'));
    mkdirSync(join(root, 'www'));
    suite = join(root, 'suite');
    marks = join(root, 'marks');
    mkdirSync(suite);
    mkdirSync(marks);
    writeFileSync(join(suite, 'README'), 'a test suite that is all in its run_command\n');
    server = new TarballServer(join(root, 'www'));
    await server.start();
  });

  afterEach(async () => {
    for (const lab of labs.splice(0)) await lab.close();
    await server.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it("a guest that does not start: ERROR domain.vm2.start with xl's error, domains.start WARN, vm1 and dom0 run their tests", async () => {
    const lab = newLab({ guests: ['vm1', 'vm2'] });
    const xlError = 'libxl: error: libxl_create.c:1358:domcreate_launch_dm: Domain 2:device model did not start: -3';
    lab.sim.setFaults({ createFails: { vm2: { stderr: xlError, exitStatus: 3 } } });
    const { dir } = await lab.night();
    const j = journalOf(dir);
    expect(stepStatuses(j)).to.include({ 'domains.dispatch': 'done/GOOD', 'domains.start': 'done/WARN', 'domains.wait': 'done/GOOD', 'domains.collect': 'done/GOOD' });
    const start = step(j, 'domains.start');
    expect(start.reason).to.match(/^vm2: xl create -f \S+\/vm2\.cfg exited with status 3 after [^:]+: /).and.contain(xlError);
    expect(start.outputs.created).to.deep.equal(['vm1']);
    // The night's result: not GOOD (a domain did not run), but not a failed night either; it says why.
    expect(j.outcome?.status).to.equal('WARN');
    expect(j.outcome?.reason).to.contain('vm2').and.contain(xlError);

    const lines = statusLines(join(dir, 'status.log'));
    const vm2 = lines.filter((l) => /\tdomain\.vm2/.test(l));
    expect(vm2).to.have.length(1);
    expect(vm2[0]).to.match(new RegExp(`^\\tERROR\\t----\\tdomain\\.vm2\\.start\\txl create -f \\S+vm2\\.cfg exited with status 3 .*${xlError.replace(/[.]/g, '\\.')}$`));
    expect(lines).to.include('END WARN\t----\tdomains.start\t' + start.reason);
    expect(lines).to.include.members(['\tGOOD\t----\tdomain.simhost\tfinished its tests: GOOD', '\tGOOD\t----\tdomain.vm1\tfinished its tests: GOOD']);
    for (const d of ['simhost', 'vm1']) {
      expect(statusLines(collected(dir, d, 'status.log')), d).to.deep.equal(['START\tsmoke\tsmoke', 'END GOOD\tsmoke\tsmoke\tcompleted successfully']);
    }
    expect(existsSync(collected(dir, 'vm2'))).to.equal(false);
    expect(step(j, 'domains.collect').outputs.collected).to.deep.equal(['simhost', 'vm1']);
    expect(lab.sim.running().domains, 'vm1 destroyed after collect').to.deep.equal([]);
  });

  it('a guest whose runner never starts is ABORT at its timeout, saying the runner never took the work and what to check', async () => {
    // vm3's runner does take its work, but is still in its test at the timeout: an ABORT that says so.
    const lab = newLab({
      guests: ['vm1', 'vm2', 'vm3'],
      domainTimeoutSeconds: 8,
      tests: { smoke: testSection('echo smoke'), slow: testSection('sleep 60') },
      domainTests: { simhost: ['smoke'], vm1: ['smoke'], vm2: ['smoke'], vm3: ['smoke', 'slow'] },
    });
    lab.sim.setFaults({ domainHangs: ['vm2'] });
    const { dir } = await lab.night();
    const j = journalOf(dir);
    expect(stepStatuses(j)).to.include({ 'domains.start': 'done/GOOD', 'domains.wait': 'done/WARN', 'domains.collect': 'done/GOOD' });
    expect(step(j, 'domains.wait').reason).to.equal('did not finish: vm2, vm3');
    expect(step(j, 'domains.wait').outputs.aborted).to.deep.equal(['vm2', 'vm3']);
    expect(j.outcome?.status).to.equal('WARN');
    expect(statusLines(join(dir, 'status.log'))).to.include(
      '\tABORT\t----\tdomain.vm3\tdid not finish its tests within 8 s (its timeout); its runner took the work but did not finish it: 1 of 2 tests done, it was in slow (attempt 1)',
    );
    // What it had done so far is collected.
    expect(statusLines(collected(dir, 'vm3', 'status.log'))).to.deep.equal(['START\tsmoke\tsmoke', 'END GOOD\tsmoke\tsmoke\tcompleted successfully', 'START\tslow\tslow']);

    const log = join(dir, 'status.log');
    const abort = statusLines(log).filter((l) => /\tdomain\.vm2\t/.test(l));
    expect(abort).to.have.length(1);
    expect(abort[0]).to.match(/^\tABORT\t----\tdomain\.vm2\tdid not finish its tests within 8 s \(its timeout\); its runner never took the work: \S+\/shared\/vm2\/xentest\.conf is still there, with no runner\.json, runner\.lock or results\/ beside it\./);
    expect(abort[0]).to.contain('xentest-runner.service is enabled').and.contain("the domain's hostname is vm2, the name of [XENVM2]");
    // At its timeout: 8 s after the guests were started, not at once and not much later.
    const late = timestampOf(log, /\tABORT\t----\tdomain\.vm2\t/) - timestampOf(log, /^END GOOD\t----\tdomains\.start\t/);
    expect(late).to.be.within(7, 11);

    const lines = statusLines(log);
    expect(lines).to.include.members(['\tGOOD\t----\tdomain.simhost\tfinished its tests: GOOD', '\tGOOD\t----\tdomain.vm1\tfinished its tests: GOOD']);
    for (const d of ['simhost', 'vm1']) expect(statusLines(collected(dir, d, 'status.log'))).to.include('END GOOD\tsmoke\tsmoke\tcompleted successfully');
    expect(existsSync(collected(dir, 'vm2'))).to.equal(false);
    expect(lab.sim.running().domains, 'the hung guests are destroyed too').to.deep.equal([]);
  });

  it("a test that hangs is killed at its timeout (FAIL), the domain's next test runs, the night completes", async () => {
    const lab = newLab({
      guests: ['vm1'],
      tests: { hangs: testSection('echo going to sleep; sleep 1000', { timeout: '3s' }), after: testSection('echo after') },
      domainTests: { simhost: ['after'], vm1: ['hangs', 'after'] },
    });
    const { dir } = await lab.night();
    const j = journalOf(dir);
    for (const s of DOMAIN_STEPS) expect(step(j, s).status, s).to.equal('GOOD');
    expect(j.outcome, 'the night completed').to.not.equal(undefined);
    expect(statusLines(collected(dir, 'vm1', 'status.log'))).to.deep.equal([
      'START\thangs\thangs',
      'END FAIL\thangs\thangs\trun_command killed after the 3 s timeout: going to sleep',
      'START\tafter\tafter',
      'END GOOD\tafter\tafter\tcompleted successfully',
    ]);
    const kv = readKeyval(collected(dir, 'vm1', 'hangs', 'keyval'));
    expect(kv.get('timed_out')).to.equal(1);
    expect(Number(kv.get('run_seconds'))).to.be.within(3, 10);
    // dom0 tells the domain's verdict with its GOOD "finished" line.
    expect(statusLines(join(dir, 'status.log'))).to.include('\tGOOD\t----\tdomain.vm1\tfinished its tests: FAIL (hangs: FAIL)');
  });

  it("dom0 tells each domain's tests as they end, parsing the domain's status.log while its runner writes it", async () => {
    // vm1's second test runs until the test lets it end (for a minute at most).
    const gate = join(marks, 'let-slow-end');
    const lab = newLab({
      guests: ['vm1'],
      tests: {
        quick: testSection('echo quick'),
        slow: testSection(`for i in $(seq 600); do [ -e ${gate} ] && break; sleep 0.1; done; echo "slow: too slow" >&2; exit 2`),
      },
      domainTests: { simhost: ['quick'], vm1: ['quick', 'slow'] },
    });
    const running = lab.night();
    const log = join(lab.sim.sharedDir, 'vm1', 'results', 'status.log');
    // While vm1's second test runs, dom0 has already said how its first ended.
    await duringNight(running, "dom0's line for vm1's first test", () => /\[domains\.wait\] vm1: quick GOOD: completed successfully$/m.test(lab.sim.resumeLog(1)));
    const now = readFileSync(log, 'utf8');
    expect(now).to.match(/^START\tslow\tslow\t/m);
    expect(now).to.not.match(/^END [A-Z]+\tslow\t/m);
    writeFileSync(gate, '');
    await running;
    expect(lab.sim.resumeLog(1)).to.match(/\[domains\.wait\] vm1: slow FAIL: run_command exited with status 2 after .*: slow: too slow$/m);
    expect(lab.sim.resumeLog(1)).to.match(/\[domains\.wait\] simhost: quick GOOD/);
  });

  it("a guest whose hostname is not its section's name: its runner finds no work and says why, dom0 ABORTs that domain at its timeout, the others run", async () => {
    const lab = newLab({ guests: ['vm1', 'vm2'], domainTimeoutSeconds: 10 });
    lab.sim.setGuestHostname('vm2', 'vm2-typo');
    const { dir } = await lab.night();
    const j = journalOf(dir);
    expect(stepStatuses(j)).to.include({ 'domains.start': 'done/GOOD', 'domains.wait': 'done/WARN', 'domains.collect': 'done/GOOD' });
    const abort = statusLines(join(dir, 'status.log')).filter((l) => /\tdomain\.vm2\t/.test(l));
    expect(abort).to.have.length(1);
    expect(abort[0]).to.match(/^\tABORT\t----\tdomain\.vm2\tdid not finish its tests within 10 s \(its timeout\); its runner never took the work: /);
    expect(abort[0]).to.contain("the domain's hostname is vm2, the name of [XENVM2]");

    // The runner in vm2 looked for vm2-typo, saw tonight's work for vm2 untaken, and said so in its own output.
    const night = basename(dir);
    expect(lab.sim.runnerLog('vm2')).to.contain(
      `night ${night} dispatched work for simhost, vm1, vm2, none for vm2-typo, and no runner has taken the work of vm2: ` +
        'if this domain is vm2, its hostname does not match the name of its XENVM section; set name = vm2-typo in that section',
    );
    // ... without writing anything anywhere: vm2's directory is as dom0 left it, and there is none for vm2-typo.
    expect(readdirSync(join(lab.dir, 'shared', 'vm2')).sort()).to.deep.equal(['night', 'xentest.conf']);
    expect(existsSync(join(lab.dir, 'shared', 'vm2-typo'))).to.equal(false);

    for (const d of ['simhost', 'vm1']) {
      expect(statusLines(collected(dir, d, 'status.log')), d).to.deep.equal(['START\tsmoke\tsmoke', 'END GOOD\tsmoke\tsmoke\tcompleted successfully']);
    }
    expect(existsSync(collected(dir, 'vm2'))).to.equal(false);
  });

  it('a runner killed (SIGKILL) in the middle of a test is restarted by its unit and runs that test again; every line once, the night GOOD', async () => {
    const mark = (name: string): string => `${marks}/${name}-$XENTEST_HOSTNAME`;
    const lab = newLab({
      guests: ['vm1'],
      tests: {
        first: testSection(`echo ran >> ${mark('first')}`),
        // The first time it hangs (and the runner is killed under it); the second time it passes.
        killed: testSection(`echo ran >> ${mark('killed')}; if [ $(wc -l < ${mark('killed')}) -eq 1 ]; then touch ${marks}/go; sleep 60; fi; echo finished`),
        last: testSection(`echo ran >> ${mark('last')}`),
      },
      domainTests: { simhost: ['first'], vm1: ['first', 'killed', 'last'] },
    });
    const running = lab.night();
    await duringNight(running, 'the test to start in vm1', () => existsSync(join(marks, 'go')));
    const pid = lab.sim.runnerPids().vm1;
    expect(pid, 'vm1 has a runner').to.be.a('number');
    process.kill(pid as number, 'SIGKILL');
    const { dir, boot } = await running;
    expect(boot.resumeExitStatus).to.equal(0);

    const j = journalOf(dir);
    for (const s of DOMAIN_STEPS) expect(step(j, s).status, s).to.equal('GOOD');
    expect(j.outcome?.status).to.equal('GOOD');
    expect(statusLines(collected(dir, 'vm1', 'status.log'))).to.deep.equal([
      'START\tfirst\tfirst',
      'END GOOD\tfirst\tfirst\tcompleted successfully',
      'START\tkilled\tkilled',
      'END GOOD\tkilled\tkilled\tcompleted successfully',
      'START\tlast\tlast',
      'END GOOD\tlast\tlast\tcompleted successfully',
    ]);
    expect(readFileSync(join(marks, 'first-vm1'), 'utf8')).to.equal('ran\n');
    expect(readFileSync(join(marks, 'killed-vm1'), 'utf8')).to.equal('ran\nran\n');
    expect(readFileSync(join(marks, 'last-vm1'), 'utf8')).to.equal('ran\n');
    expect(readKeyval(collected(dir, 'vm1', 'killed', 'keyval')).get('attempt')).to.equal(2);
    // The unit started it again (Restart=on-abnormal), and the new runner ended the test the killed one left running.
    const log = lab.sim.runnerLog('vm1');
    expect(log).to.contain('runner killed by SIGKILL; Restart=on-abnormal: starting it again in 2 s');
    expect(log).to.contain('restart 1: ExecStart=/usr/local/bin/xentest run');
    expect(log).to.match(/\[killed\] killed process group \d+ left by an interrupted run/);
  });

  it('the shared directory away for a few seconds while a guest tests: dom0 waits it out, the runner too, every result is collected, the night GOOD', async () => {
    const shared = join(root, 'lab', 'shared');
    const lab = newLab({
      guests: ['vm1'],
      tests: { during: testSection(`touch ${marks}/go-$XENTEST_HOSTNAME; sleep 1; echo done`), after: testSection('echo after') },
      domainTests: { simhost: ['after'], vm1: ['during', 'after'] },
    });
    const running = lab.night();
    await duringNight(running, 'the test in vm1 to start', () => existsSync(join(marks, 'go-vm1')));
    renameSync(shared, shared + '.away');
    // The outage: long enough for dom0 to look several times, and for the runner to finish its test meanwhile.
    await sleep(2500);
    const nightLog = join(lab.nightDir() as string, 'status.log');
    const sofar = readFileSync(nightLog, 'utf8');
    expect(sofar, 'dom0 did not take the missing directory for a finished domain').to.not.match(/\tdomain\.vm1\t/);
    expect(sofar).to.not.match(/\tdomains\.collect\t/);
    expect(existsSync(shared), 'nobody made a new shared directory in its place').to.equal(false);
    renameSync(shared + '.away', shared);
    const { dir } = await running;

    const j = journalOf(dir);
    for (const s of DOMAIN_STEPS) expect(step(j, s).status, s).to.equal('GOOD');
    expect(j.outcome?.status).to.equal('GOOD');
    expect(step(j, 'domains.collect').outputs.collected).to.deep.equal(['simhost', 'vm1']);
    expect(statusLines(collected(dir, 'vm1', 'status.log'))).to.deep.equal([
      'START\tduring\tduring',
      'END GOOD\tduring\tduring\tcompleted successfully',
      'START\tafter\tafter',
      'END GOOD\tafter\tafter\tcompleted successfully',
    ]);
    expect(statusLines(collected(dir, 'simhost', 'status.log'))).to.include('END GOOD\tafter\tafter\tcompleted successfully');
    expect(readFileSync(collected(dir, 'vm1', 'during', 'debug', 'run.log'), 'utf8')).to.contain('done');
    expect(lab.sim.runnerLog('vm1')).to.contain('shared directory unavailable').and.contain('shared directory back');
    const dom0 = lab.sim.resumeLog(1);
    expect(dom0).to.match(/\[domains\.wait\] vm1: the shared directory \S+ is not there; the shared directory may be briefly unavailable: still waiting/);
    expect(dom0).to.match(/\[domains\.wait\] vm1: \S+ is back after /);
  });

  it('a shared directory not there yet at dispatch: dom0 waits for it instead of making one on its own disk', async () => {
    const shared = join(root, 'lab', 'shared');
    const lab = newLab({ guests: ['vm1'] });
    renameSync(shared, shared + '.away');
    const running = lab.night();
    await duringNight(running, 'dispatch to wait for the shared directory', () =>
      /\[domains\.dispatch\] waiting up to 120 s for the shared directory \S+ \(ENOENT\)/.test(lab.sim.resumeLog(1)),
    );
    await sleep(1000);
    expect(existsSync(shared), 'dispatch did not create the shared directory').to.equal(false);
    renameSync(shared + '.away', shared);
    const { dir } = await running;
    const j = journalOf(dir);
    for (const s of DOMAIN_STEPS) expect(step(j, s).status, s).to.equal('GOOD');
    expect(readdirSync(join(dir, 'domains')).sort()).to.deep.equal(['simhost', 'vm1']);
  });

  it('three domains run the same 5 s test at the same time: the wait takes about 5 s, not 15', async () => {
    const lab = newLab({ guests: ['vm1', 'vm2'], tests: { sleep5: testSection('sleep 5') } });
    const { dir } = await lab.night();
    const j = journalOf(dir);
    for (const s of DOMAIN_STEPS) expect(step(j, s).status, s).to.equal('GOOD');
    const start = Date.parse(step(j, 'domains.start').startedAt as string);
    const waited = Date.parse(step(j, 'domains.wait').finishedAt as string);
    console.log(`      (domains.start to the end of domains.wait: ${waited - start} ms)`);
    expect(waited - start).to.be.lessThan(10_000);
    for (const d of lab.domains) {
      expect(Number(readKeyval(collected(dir, d, 'sleep5', 'keyval')).get('run_seconds')), d).to.be.at.least(5);
      expect(statusLines(collected(dir, d, 'status.log')), d).to.deep.equal(['START\tsleep5\tsleep5', 'END GOOD\tsleep5\tsleep5\tcompleted successfully']);
    }
  });

  it("a test that prints 1 GiB in a guest: all of it in the collected run.log, the runner's peak memory under 100 MiB", async function () {
    this.timeout(180_000);
    const GiB = 1024 ** 3;
    const lab = newLab({
      guests: ['vm1'],
      tests: {
        chatty: testSection(`yes "a line of test output that goes on and on" | head -c ${GiB}; echo; echo last line`),
        quick: testSection('echo quick'),
      },
      domainTests: { simhost: ['quick'], vm1: ['chatty'] },
    });
    const { dir } = await lab.night();
    try {
      const j = journalOf(dir);
      for (const s of DOMAIN_STEPS) expect(step(j, s).status, s).to.equal('GOOD');
      const runLog = collected(dir, 'vm1', 'chatty', 'debug', 'run.log');
      expect(statSync(runLog).size).to.be.at.least(GiB);
      expect(statusLines(collected(dir, 'vm1', 'status.log'))).to.include('END GOOD\tchatty\tchatty\tcompleted successfully');
      const peak = /runner peak memory \(VmHWM\): (\d+) MiB/.exec(lab.sim.runnerLog('vm1'));
      expect(peak, lab.sim.runnerLog('vm1')).to.not.equal(null);
      console.log(`      (the runner's peak memory: ${peak![1]} MiB)`);
      expect(Number(peak![1])).to.be.lessThan(100);
    } finally {
      // Two copies of a GiB: gone at once, not at the end of the run.
      rmSync(collected(dir, 'vm1'), { recursive: true, force: true });
      rmSync(join(lab.dir, 'shared', 'vm1', 'results'), { recursive: true, force: true });
    }
  });
});

describe('domains.collect when the shared directory is away', function () {
  this.timeout(30_000);
  let root: string;
  let shared: string;
  let dest: string;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'xentest-collect-'));
    shared = join(root, 'shared');
    dest = join(root, 'night', 'domains');
    for (const [name, file] of [['a', 'status.log'], ['b', 'status.log']] as const) {
      mkdirSync(join(shared, name, 'results', 'test1'), { recursive: true });
      writeFileSync(join(shared, name, 'results', file), `END GOOD\t----\ttest1 of ${name}\n`);
      writeFileSync(join(shared, name, 'results', 'test1', 'keyval'), 'status=GOOD\n');
    }
    // Dispatched, but no results: nothing to collect, and nothing wrong.
    mkdirSync(join(shared, 'c'));
  });

  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('waits while it is away and copies everything once it is back', async () => {
    renameSync(shared, shared + '.away');
    const lines: string[] = [];
    let back: Promise<void> | undefined;
    const t0 = Date.now();
    const got = await copyDomainResults(shared, ['a', 'b', 'c'], dest, {
      limitMs: 20_000,
      log: (line) => {
        lines.push(line);
        // Back a second after the copy noticed.
        back ??= sleep(1000).then(() => renameSync(shared + '.away', shared));
      },
    });
    await back;
    expect(Date.now() - t0).to.be.at.least(900);
    expect(got).to.deep.equal({ collected: ['a', 'b'], notCollected: [] });
    expect(readFileSync(join(dest, 'a', 'status.log'), 'utf8')).to.contain('test1 of a');
    expect(readFileSync(join(dest, 'b', 'test1', 'keyval'), 'utf8')).to.equal('status=GOOD\n');
    expect(existsSync(join(dest, 'c'))).to.equal(false);
    expect(lines[0]).to.equal(`a: the shared directory ${shared} is not there; the shared directory may be briefly unavailable: retrying for up to 20 s`);
    expect(lines[1]).to.match(/^the shared directory is back after [\d.]+ s$/);
    expect(lines).to.have.length(2);
  });

  it('gives up after its limit with a clear reason for each domain it could not copy, and copies the others', async () => {
    rmSync(join(shared, 'b'), { recursive: true });
    const t0 = Date.now();
    const got = await copyDomainResults(shared, ['a', 'b', 'c'], dest, { limitMs: 1000 });
    expect(Date.now() - t0).to.be.within(900, 5000);
    expect(got.collected).to.deep.equal(['a']);
    expect(got.notCollected).to.deep.equal([{ name: 'b', why: `the shared directory has been unavailable for ${got.notCollected[0]?.why.match(/for (\S+ \S+)/)?.[1]} (${join(shared, 'b')} is not there)` }]);
    expect(got.notCollected[0]?.why).to.match(/unavailable for 1\.\d s/);
  });
});
