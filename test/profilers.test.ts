/**
 * Profilers: dom0 commands of the control file's [Profilers] section that run
 * while the domains test, on whole nights on the simulated Xen host: started
 * before the dispatch, stopped when the domains finish, their output in the
 * night's directory, started again when the night resumes after a power cut,
 * never started twice, never left running.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NightData } from '../agent/pipeline/journal.js';
import { interpretControlFile } from '../shared/controlfile/model.js';
import { readControlFileLenient } from '../shared/controlfile/reader.js';
import { readProcStat } from '../shared/process/procstat.js';
import { groupHasLiveMembers } from '../shared/process/run.js';
import { NightLab, TarballServer, type LabOptions } from '../scripts/simhost/lab.js';
import { mapAtOnce, matrixWidth } from './support/pool.js';

interface ProfilerRun {
  pid: number;
  boot: string;
  restarts: number;
}

function journalOf(dir: string): NightData {
  return JSON.parse(readFileSync(join(dir, 'journal.json'), 'utf8')) as NightData;
}

function profilerRun(dir: string, name: string): ProfilerRun {
  const start = journalOf(dir).steps.find((s) => s.name === 'profilers.start');
  return (start?.outputs.profilers as unknown as Record<string, ProfilerRun>)[name] as ProfilerRun;
}

/** status.log lines without their timestamp fields. */
function statusLines(dir: string): string[] {
  return readFileSync(join(dir, 'status.log'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.replace(/\ttimestamp=\d+\tlocaltime=[^\t]*/, '').replace(/\tduration_ms=\d+/, ''));
}

/** The status lines about one profiler. */
function profilerLines(dir: string, name: string): string[] {
  return statusLines(dir).filter((l) => l.trimStart().split('\t')[2] === `profiler.${name}`);
}

function stepStatuses(j: NightData): Record<string, string> {
  return Object.fromEntries(j.steps.map((s) => [s.name, `${s.state}/${s.status ?? '-'}`]));
}

const GOOD_NIGHT = {
  fetch: 'done/GOOD',
  'build.xen': 'done/GOOD',
  'install.xen': 'done/GOOD',
  bootloader: 'done/GOOD',
  reboot: 'done/GOOD',
  'profilers.start': 'done/GOOD',
  'domains.dispatch': 'done/GOOD',
  'domains.start': 'done/GOOD',
  'domains.wait': 'done/GOOD',
  'profilers.stop': 'done/GOOD',
  'domains.collect': 'done/GOOD',
  'results.store': 'done/GOOD',
  'results.report': 'done/GOOD',
};

/** Live processes whose command line has the token (a profiler's command carries one). */
function processesWith(token: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const st = readProcStat(Number(name));
      if (!st || st.state === 'Z' || st.state === 'X') continue;
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(token)) out.push(Number(name));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** A profiler that runs until it is stopped: a timestamped tick every 0.2 s, and a token to find its processes by (%% is a % in a control file). */
function ticker(token: string): string {
  return `while :; do echo "${token} $(date +%%s.%%N)"; sleep 0.2; done`;
}

/** The seconds since the epoch of each tick in a ticker's log. */
function ticks(log: string, token: string): number[] {
  return log
    .split('\n')
    .filter((l) => l.startsWith(token + ' '))
    .map((l) => Number(l.split(' ')[1]));
}

const RESTART_MARKER = /^--- xentest: restarted at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z \(night resumed\) ---$/m;

describe('profilers', function () {
  this.timeout(300_000);
  let root: string;
  let server: TarballServer;
  const labs: NightLab[] = [];
  const tokens: string[] = [];
  const newLab = (name: string, options: LabOptions): NightLab => {
    const lab = new NightLab(join(root, name), server, options);
    labs.push(lab);
    return lab;
  };
  const newToken = (): string => {
    const t = `tick-${randomUUID().slice(0, 8)}`;
    tokens.push(t);
    return t;
  };
  /** A test suite whose test takes a few seconds, so that the night spends them in domains.wait. */
  const slowSuite = (): Record<string, Record<string, string>> => {
    const suite = join(root, 'suites', 'slow');
    mkdirSync(suite, { recursive: true });
    writeFileSync(join(suite, 'run'), '#!/bin/sh\nsleep 4\necho "slow: $(hostname) ok"\n', { mode: 0o755 });
    return { slow: { source_url: suite, test_dir: 'slow', run_command: './run' } };
  };

  beforeEach(async () => {
    root = mkdtempSync(join(tmpdir(), 'xentest-profilers-'));
    mkdirSync(join(root, 'www'));
    server = new TarballServer(join(root, 'www'));
    await server.start();
  });
  afterEach(async () => {
    for (const lab of labs.splice(0)) await lab.close();
    // Whatever a failed test left running.
    for (const t of tokens.splice(0)) for (const pid of processesWith(t)) process.kill(pid, 'SIGKILL');
    await server.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it("takes only [Profilers]'s own options as profilers, in the file's order, with where each was written", () => {
    const file = join(root, 'profilers.cfg');
    writeFileSync(
      file,
      [
        '[DEFAULT]',
        'delay = 5',
        '[Preferences]',
        'xen-tree = xen',
        'shared_dir = /xentest/shared',
        '[Locations]',
        'xen = /srv/src/xen',
        '[Profilers]',
        'vmstat = vmstat %(delay)s',
        'XenTop = xentop -b -d %(delay)s',
        '[XENVM0]',
        'name = bob13',
        'tempdir = /tmp',
        '',
      ].join('\n'),
    );
    const { control, problems } = interpretControlFile(readControlFileLenient(file));
    expect(problems.errors).to.deep.equal([]);
    expect(control?.profilers).to.deep.equal([
      { name: 'vmstat', command: 'vmstat 5', file, line: 9 },
      { name: 'xentop', command: 'xentop -b -d 5', file, line: 10 },
    ]);
  });

  it('runs a one-shot and a long-running profiler around the domains, collects their output and leaves nothing running', async () => {
    const token = newToken();
    const lab = newLab('lab', { profilers: { dmesg: 'xl dmesg', ticker: ticker(token) } });
    const { boot, dir } = await lab.night();
    expect(boot.resumeExitStatus, lab.sim.resumeLog(1)).to.equal(0);
    const j = journalOf(dir);
    expect(stepStatuses(j)).to.deep.equal(GOOD_NIGHT);
    expect(j.outcome?.status).to.equal('GOOD');
    // Started after the reboot: the hypervisor console is the new build's.
    expect(readFileSync(join(dir, 'profilers/dmesg.log'), 'utf8')).to.match(/^\(XEN\) Xen version 4\.19-unstable \(/m);
    // The ticker ran from before the dispatch until the domains had finished.
    const times = ticks(readFileSync(join(dir, 'profilers/ticker.log'), 'utf8'), token);
    const at = (step: string, key: 'startedAt' | 'finishedAt'): number => Date.parse(j.steps.find((s) => s.name === step)?.[key] as string) / 1000;
    expect(times.length).to.be.at.least(3);
    expect(times[0]).to.be.at.most(at('domains.dispatch', 'startedAt'));
    expect(times[times.length - 1]).to.be.at.least(at('domains.wait', 'finishedAt') - 1);
    expect(groupHasLiveMembers(profilerRun(dir, 'ticker').pid), 'the ticker group is gone').to.equal(false);
    expect(processesWith(token)).to.deep.equal([]);
    // One line each, inside profilers.stop, whose START follows domains.wait's END.
    expect(profilerLines(dir, 'dmesg')).to.have.length(1);
    expect(profilerLines(dir, 'dmesg')[0]).to.match(/^\tGOOD\t----\tprofiler\.dmesg\tfinished by itself \(exit status 0\); [1-9]\d* bytes of output in profilers\/dmesg\.log, restarted 0 times$/);
    expect(profilerLines(dir, 'ticker')).to.have.length(1);
    expect(profilerLines(dir, 'ticker')[0]).to.match(/^\tGOOD\t----\tprofiler\.ticker\t[1-9]\d* bytes of output in profilers\/ticker\.log, restarted 0 times$/);
    const lines = statusLines(dir);
    const index = (prefix: string): number => lines.findIndex((l) => l.startsWith(prefix));
    expect(index('START\t----\tprofilers.start\t')).to.be.below(index('START\t----\tdomains.dispatch\t'));
    expect(index('END GOOD\t----\tdomains.wait\t')).to.be.below(index('START\t----\tprofilers.stop\t'));
    expect(index('START\t----\tprofilers.stop\t')).to.be.below(index('\tGOOD\t----\tprofiler.ticker\t'));
    expect(index('\tGOOD\t----\tprofiler.ticker\t')).to.be.below(index('START\t----\tdomains.collect\t'));
  });

  it('reports a profiler that fails or cannot be found as WARN, once, and the night is still GOOD', async () => {
    const lab = newLab('lab', { profilers: { broken: 'echo "no luck today" >&2; exit 3', missing: 'no-such-profiler-command' } });
    const { dir } = await lab.night();
    const j = journalOf(dir);
    expect(stepStatuses(j)).to.deep.equal(GOOD_NIGHT);
    expect(j.outcome?.status).to.equal('GOOD');
    expect(profilerLines(dir, 'broken')).to.deep.equal(['\tWARN\t----\tprofiler.broken\texited with status 3 within 1 s of its start: no luck today']);
    expect(profilerLines(dir, 'missing')).to.have.length(1);
    expect(profilerLines(dir, 'missing')[0]).to.match(/^\tWARN\t----\tprofiler\.missing\texited with status 127 within 1 s of its start: .*no-such-profiler-command.*not found$/);
  });

  it('stops the profilers when a failed step ends the night before profilers.stop', async () => {
    const token = newToken();
    const lab = newLab('lab', { profilers: { ticker: ticker(token) } });
    // dom0's directory in the shared directory is a symbolic link: domains.dispatch refuses it (ERROR).
    mkdirSync(join(root, 'elsewhere'));
    rmSync(join(lab.dir, 'shared/simhost'), { recursive: true, force: true });
    symlinkSync(join(root, 'elsewhere'), join(lab.dir, 'shared/simhost'));
    const { boot, dir } = await lab.night();
    expect(boot.resumeExitStatus).to.equal(1);
    const j = journalOf(dir);
    expect(j.outcome?.status).to.equal('ERROR');
    expect(stepStatuses(j)).to.include({ 'profilers.start': 'done/GOOD', 'domains.dispatch': 'done/ERROR', 'domains.wait': 'pending/-', 'profilers.stop': 'done/GOOD' });
    expect(processesWith(token)).to.deep.equal([]);
    expect(profilerLines(dir, 'ticker')).to.have.length(1);
    expect(profilerLines(dir, 'ticker')[0]).to.match(/^\tGOOD\t----\tprofiler\.ticker\t[1-9]\d* bytes of output/);
    const lines = statusLines(dir);
    expect(lines.findIndex((l) => l.startsWith('END ERROR\t----\tdomains.dispatch\t'))).to.be.below(lines.indexOf('START\t----\tprofilers.stop\t'));
  });

  it('starts a profiler again when the night resumes after a power cut, and stops it when the domains finish', async () => {
    const token = newToken();
    const lab = newLab('lab', {
      profilers: { ticker: ticker(token) },
      tests: slowSuite(),
      resumeEnv: { XENTEST_CRASH_AT: 'domains.wait:middle', XENTEST_CRASH_ONCE: join(root, 'crashed') },
    });
    const { boot, dir } = await lab.night();
    expect(boot.resumeExitStatus, 'the agent was killed in domains.wait').to.not.equal(0);
    const first = profilerRun(dir, 'ticker');
    expect(groupHasLiveMembers(first.pid), 'a killed agent leaves its profilers running').to.equal(true);
    const next = await lab.sim.powerCycle();
    expect(groupHasLiveMembers(first.pid), 'the power cut ended the profiler with every other process of the machine').to.equal(false);
    expect(next.resumeExitStatus, lab.sim.resumeLog(next.n)).to.equal(0);
    const j = journalOf(dir);
    expect(j.outcome?.status).to.equal('GOOD');
    expect(stepStatuses(j)).to.deep.equal(GOOD_NIGHT);
    const second = profilerRun(dir, 'ticker');
    expect(second.restarts).to.equal(1);
    expect(second.pid).to.not.equal(first.pid);
    expect(second.boot).to.not.equal(first.boot);
    const log = readFileSync(join(dir, 'profilers/ticker.log'), 'utf8');
    expect(log).to.match(RESTART_MARKER);
    const [before, after] = log.split(RESTART_MARKER) as [string, string];
    expect(ticks(before, token).length, 'output before the power cut').to.be.at.least(1);
    expect(ticks(after, token).length, 'output after the restart').to.be.at.least(1);
    expect(groupHasLiveMembers(second.pid)).to.equal(false);
    expect(processesWith(token)).to.deep.equal([]);
    expect(profilerLines(dir, 'ticker')).to.have.length(1);
    expect(profilerLines(dir, 'ticker')[0]).to.match(/^\tGOOD\t----\tprofiler\.ticker\t\d+ bytes of output in profilers\/ticker\.log, restarted 1 time$/);
  });

  it('does not start a second copy of a profiler that outlived a killed agent', async () => {
    const token = newToken();
    const lab = newLab('lab', {
      profilers: { ticker: ticker(token) },
      tests: slowSuite(),
      resumeEnv: { XENTEST_CRASH_AT: 'domains.wait:middle', XENTEST_CRASH_ONCE: join(root, 'crashed') },
    });
    const { boot, dir } = await lab.night();
    expect(boot.resumeExitStatus).to.not.equal(0);
    const first = profilerRun(dir, 'ticker');
    // The operator runs the night again, in the same boot: the profiler still runs.
    const run = await lab.build();
    expect(run.status, run.stdout + run.stderr).to.equal(0);
    expect(run.stdout).to.match(/continuing night/);
    const j = journalOf(dir);
    expect(j.outcome?.status).to.equal('GOOD');
    expect(profilerRun(dir, 'ticker')).to.deep.equal(first);
    expect(readFileSync(join(dir, 'profilers/ticker.log'), 'utf8')).not.to.match(RESTART_MARKER);
    expect(groupHasLiveMembers(first.pid)).to.equal(false);
    expect(processesWith(token)).to.deep.equal([]);
    expect(profilerLines(dir, 'ticker')).to.have.length(1);
    expect(profilerLines(dir, 'ticker')[0]).to.match(/^\tGOOD\t.*restarted 0 times$/);
  });

  it('finishes the profiler steps exactly once whatever point of them the agent is killed at', async () => {
    const points = [
      'profilers.start:middle#1',
      'profilers.start:middle#2',
      'profilers.start:finishing#1',
      'profilers.start:done#1',
      'profilers.stop:started#1',
      'profilers.stop:middle#1',
      'profilers.stop:middle#2',
      'profilers.stop:ended#1',
    ];
    // Each point's problems, or null.
    const outcomes = await mapAtOnce(points, matrixWidth(), async (point, i): Promise<string | null> => {
      const token = newToken();
      const lab = newLab(`kill-${i}`, {
        profilers: { dmesg: 'xl dmesg', ticker: ticker(token) },
        resumeEnv: { XENTEST_CHECKPOINT_LOG: join(root, `kill-${i}.points`), XENTEST_CRASH_AT: point, XENTEST_CRASH_ONCE: join(root, `kill-${i}.once`) },
      });
      const { boot, dir } = await lab.night();
      const problems: string[] = [];
      if (boot.resumeExitStatus === 0) problems.push('the agent was not killed');
      // Continued by hand, in the same boot.
      const run = await lab.build();
      if (run.status !== 0) problems.push(`the re-run exited with ${run.status}: ${run.stdout}${run.stderr}`);
      const j = journalOf(dir);
      if (j.outcome?.status !== 'GOOD') problems.push(`outcome ${JSON.stringify(j.outcome)}`);
      const lines = statusLines(dir);
      const dupes = lines.filter((l, k) => lines.indexOf(l) !== k);
      if (dupes.length) problems.push(`duplicated lines: ${JSON.stringify(dupes)}`);
      for (const s of ['profilers.start', 'profilers.stop']) {
        if (lines.filter((l) => l === `START\t----\t${s}\t`).length !== 1) problems.push(`START ${s} not exactly once`);
        if (lines.filter((l) => l.startsWith(`END GOOD\t----\t${s}\t`)).length !== 1) problems.push(`END ${s} not exactly once`);
      }
      for (const name of ['dmesg', 'ticker']) {
        const mine = profilerLines(dir, name);
        if (mine.length !== 1 || !mine[0]?.startsWith('\tGOOD\t')) problems.push(`${name}: ${JSON.stringify(mine)}`);
      }
      const tickerLog = readFileSync(join(dir, 'profilers/ticker.log'), 'utf8');
      if (ticks(tickerLog, token).length === 0) problems.push('the ticker wrote nothing');
      // The ticker was running all along: it is never started twice.
      if (RESTART_MARKER.test(tickerLog)) problems.push('the ticker was started again');
      const left = processesWith(token);
      if (left.length) problems.push(`processes left: ${left.join(', ')}`);
      return problems.length ? `${point}: ${problems.join('; ')}` : null;
    });
    const failures = outcomes.filter((o): o is string => o !== null);
    expect(failures, failures.join('\n')).to.deep.equal([]);
  });
});
