import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import {
  describeResult,
  killProcessGroup,
  runArgv,
  runCommand,
  type CmdResult,
} from '../shared/process/run.js';
import { readProcStat } from '../shared/process/procstat.js';

/** Whether kill(2) still finds the process group (or process). */
function exists(pidOrNegativePgid: number): boolean {
  try {
    process.kill(pidOrNegativePgid, 0);
    return true;
  } catch (e) {
    expect((e as NodeJS.ErrnoException).code).to.equal('ESRCH');
    return false;
  }
}

describe('shared/process/run', function () {
  let dir: string;
  let log: string;
  const leftovers: number[] = [];

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xentest-run-'));
    log = path.join(dir, 'logs', 'deep', 'cmd.log');
  });
  afterEach(() => {
    // Groups a test started on purpose and left running.
    for (const pgid of leftovers.splice(0)) killProcessGroup(pgid, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('exit statuses, signals and the log', () => {
    it('reports the exit status and keeps stdout and stderr, interleaved, in the log with a header and a footer', async () => {
      const r = await runCommand('echo out1; echo err1 >&2; echo out2; exit 3', { timeoutMs: 10_000, logFile: log, cwd: dir });
      expect(r.exitStatus).to.equal(3);
      expect(r.signal).to.equal(null);
      expect(r.timedOut).to.equal(false);
      expect(r.aborted).to.equal(false);
      expect(r.command).to.equal('echo out1; echo err1 >&2; echo out2; exit 3');
      expect(r.tail).to.include('out1').and.include('err1').and.include('out2');
      expect(describeResult(r)).to.match(/^exited with status 3 after \d+ ms$/);
      const lines = fs.readFileSync(log, 'utf8').split('\n');
      expect(lines[0]).to.match(/^\$ echo out1; echo err1 >&2; echo out2; exit 3 {2}# cwd=\S+ started=\d{4}-\d\d-\d\dT/);
      expect(lines[0]).to.include(`cwd=${dir}`);
      expect(lines.slice(1, 4).sort()).to.deep.equal(['err1', 'out1', 'out2']);
      expect(lines[4]).to.match(/^# exited with status 3 after \d+ ms \(finished \d{4}-/);
    });

    it('appends each command to the same log, footer on its own line even without a final newline', async () => {
      await runCommand('printf first', { timeoutMs: 10_000, logFile: log });
      await runCommand('printf second', { timeoutMs: 10_000, logFile: log });
      const lines = fs.readFileSync(log, 'utf8').split('\n');
      expect(lines[1]).to.equal('first');
      expect(lines[2]).to.match(/^# exited with status 0/);
      expect(lines[3]).to.match(/^\$ printf second/);
      expect(lines[4]).to.equal('second');
    });

    it('reports death by a signal with exitStatus null', async () => {
      const r = await runCommand('kill -USR1 $$; sleep 5', { timeoutMs: 10_000, logFile: log });
      expect(r.exitStatus).to.equal(null);
      expect(r.signal).to.equal('SIGUSR1');
      expect(r.timedOut).to.equal(false);
      expect(describeResult(r)).to.match(/^killed by SIGUSR1 after \d+ ms$/);
    });

    it('runs argv without a shell, with the given env and cwd, and stdin from /dev/null', async () => {
      const r = await runArgv(['printf', '%s|', 'a b', '$HOME', '*'], { timeoutMs: 10_000, logFile: log, cwd: dir });
      expect(r.tail).to.equal('a b|$HOME|*|');
      expect(r.command).to.equal(`printf '%s|' 'a b' '$HOME' '*'`);

      const e = await runCommand('echo "$XENTEST_RUN_TEST"; pwd', {
        timeoutMs: 10_000,
        logFile: log,
        cwd: dir,
        env: { PATH: process.env.PATH, XENTEST_RUN_TEST: 'from-env' },
      });
      expect(e.tail).to.equal(`from-env\n${fs.realpathSync(dir)}\n`);

      // cat would wait for input forever (until the timeout) if stdin were a pipe or a terminal.
      const c = await runArgv(['cat'], { timeoutMs: 5000, logFile: log });
      expect(c.timedOut).to.equal(false);
      expect(c.exitStatus).to.equal(0);
    });
  });

  describe('streaming output', () => {
    it('writes output to the log as it comes, not at the end', async () => {
      const running = runCommand('echo first-line; sleep 1.5; echo second-line', { timeoutMs: 10_000, logFile: log });
      await new Promise((r) => setTimeout(r, 700));
      const midway = fs.readFileSync(log, 'utf8').split('\n');
      expect(midway).to.include('first-line').and.not.include('second-line');
      await running;
      expect(fs.readFileSync(log, 'utf8').split('\n')).to.include('second-line');
    });

    it('keeps only tailBytes of a 50 MB output in memory while all of it reaches the log', async function () {
      this.timeout(60_000);
      const total = 50 * 1024 * 1024;
      global.gc?.();
      const before = process.memoryUsage();
      let peakRss = before.rss;
      let peakExternal = before.external + before.arrayBuffers;
      const sampler = setInterval(() => {
        const m = process.memoryUsage();
        peakRss = Math.max(peakRss, m.rss);
        peakExternal = Math.max(peakExternal, m.external + m.arrayBuffers);
      }, 5);
      let lines = 0;
      const r = await runCommand(`yes 0123456789abcdefghijklmnopqrstu | head -c ${total}; echo; echo the-end`, {
        timeoutMs: 60_000,
        logFile: log,
        tailBytes: 1000,
        heartbeat: () => lines++,
      });
      clearInterval(sampler);
      expect(r.exitStatus).to.equal(0);
      expect(r.tail.length).to.equal(1000);
      expect(r.tail.endsWith('\nthe-end\n')).to.equal(true);
      expect(lines).to.equal(total / 32 + 2);
      expect(fs.statSync(log).size).to.be.greaterThan(total);
      const grewMiB = (peakRss - before.rss) / 2 ** 20;
      const externalMiB = (peakExternal - before.external - before.arrayBuffers) / 2 ** 20;
      // Holding the output would cost 50 MiB (and more as a string).
      expect(grewMiB, `RSS grew by ${grewMiB.toFixed(1)} MiB`).to.be.lessThan(25);
      expect(externalMiB, `buffers grew by ${externalMiB.toFixed(1)} MiB`).to.be.lessThan(25);
    });

    it('without a heartbeat, the command writes the log itself: the agent reads back only the tail', async () => {
      const total = 20 * 1024 * 1024;
      const r = await runCommand(`yes 0123456789abcdefghijklmnopqrstu | head -c ${total}; echo; echo the-end >&2`, {
        timeoutMs: 60_000,
        logFile: log,
        tailBytes: 1000,
      });
      expect(r.exitStatus).to.equal(0);
      expect(r.tail.length).to.equal(1000);
      expect(r.tail.endsWith('\nthe-end\n')).to.equal(true);
      const text = fs.readFileSync(log, 'utf8');
      expect(text.length).to.be.greaterThan(total);
      // The footer follows the output on a line of its own.
      expect(text).to.match(/\nthe-end\n# exited with status 0 after [^\n]+\n$/);
    });

    it('gives the heartbeat each complete line of stdout and stderr, CR stripped, a huge line cut', async () => {
      const seen: string[] = [];
      await runCommand(`printf 'a\\nb\\r\\n'; printf 'e1\\n' >&2; head -c 100000 /dev/zero | tr '\\0' x; printf '\\nc'`, {
        timeoutMs: 10_000,
        logFile: log,
        heartbeat: (l) => seen.push(l),
      });
      const long = seen.find((l) => l.startsWith('xxx'));
      expect(long, 'the long line').to.not.equal(undefined);
      expect(long!.length).to.be.lessThan(10_000);
      expect(long!.endsWith('…')).to.equal(true);
      expect(seen.filter((l) => !l.startsWith('xxx'))).to.have.members(['a', 'b', 'c', 'e1']);
    });

    it('decodes the tail as UTF-8 even when the cut falls inside a character', async () => {
      // 'é' is two bytes: a tail of 5 bytes of "éééé" starts in the middle of one.
      const r = await runCommand(`printf 'ééé\\n'`, { timeoutMs: 10_000, logFile: log, tailBytes: 6 });
      expect(r.tail).to.equal('éé\n');
      expect(r.tail).to.not.include('\uFFFD');
    });
  });

  describe('a command whose process group is recorded (onSpawn)', () => {
    it('starts only once onSpawn has returned', async () => {
      let recordedAt = 0;
      const stamp = path.join(dir, 'started');
      const r = await runCommand(`date +%s%3N > ${stamp}`, {
        timeoutMs: 10_000,
        logFile: log,
        onSpawn: () => {
          // A slow record (an fsync on a busy disk): the command must not be under way meanwhile.
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
          recordedAt = Date.now();
        },
      });
      expect(r.exitStatus, r.tail).to.equal(0);
      expect(Number(fs.readFileSync(stamp, 'utf8'))).to.be.at.least(recordedAt);
    });

    it('never starts if the agent is killed before the record is done, and leaves nothing running', async function () {
      this.timeout(20_000);
      const ran = path.join(dir, 'ran');
      const pidFile = path.join(dir, 'pgid');
      const runModule = new URL('../shared/process/run.js', import.meta.url).href;
      const agent = [
        `import { writeFileSync } from 'node:fs';`,
        `import { runCommand } from ${JSON.stringify(runModule)};`,
        `await runCommand(${JSON.stringify(`touch ${ran}; sleep 30`)}, { timeoutMs: 60000, logFile: ${JSON.stringify(log)},`,
        `  onSpawn: (pid) => { writeFileSync(${JSON.stringify(pidFile)}, String(pid)); process.kill(process.pid, 'SIGKILL'); } });`,
      ].join('\n');
      const { spawnSync } = await import('node:child_process');
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', agent], { encoding: 'utf8' });
      expect(r.signal, r.stderr).to.equal('SIGKILL');
      const pgid = Number(fs.readFileSync(pidFile, 'utf8'));
      leftovers.push(pgid);
      const deadline = Date.now() + 5000;
      while (exists(-pgid) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
      expect(exists(-pgid), 'the waiting shell ends when the agent is gone').to.equal(false);
      expect(fs.existsSync(ran), 'the command never ran').to.equal(false);
    });
  });

  describe('timeouts, kills and aborts', () => {
    it('kills the whole process group, grandchildren included, on timeout', async function () {
      this.timeout(30_000);
      let pgid = 0;
      let ownGroup = -1;
      const r = await runCommand('sleep 1000 & echo $!; sh -c "sleep 1000 & echo \\$!; sleep 1000" & sleep 1000; wait', {
        timeoutMs: 500,
        killGraceMs: 5000,
        logFile: log,
        onSpawn: (pid) => {
          pgid = pid;
          ownGroup = readProcStat(pid)?.pgrp ?? -1;
        },
      });
      expect(pgid).to.be.greaterThan(1);
      expect(ownGroup, 'the pid is the process group id').to.equal(pgid);
      expect(r.timedOut).to.equal(true);
      expect(r.aborted).to.equal(false);
      expect(r.exitStatus).to.equal(null);
      expect(r.signal).to.equal('SIGTERM');
      expect(describeResult(r)).to.equal('killed after the 0.5 s timeout');
      expect(r.durationMs).to.be.within(450, 5000);
      const grandchildren = r.tail.trim().split('\n').map(Number);
      expect(grandchildren).to.have.length(2);
      for (const pid of grandchildren) expect(exists(pid), `grandchild ${pid}`).to.equal(false);
      expect(exists(-pgid), `process group ${pgid}`).to.equal(false);
      expect(fs.readFileSync(log, 'utf8')).to.match(/# killed after the 0\.5 s timeout/);
    });

    it('sends SIGKILL after the grace to a group that ignores SIGTERM', async function () {
      this.timeout(30_000);
      let pgid = 0;
      const r = await runCommand(`trap '' TERM; sh -c "trap '' TERM; sleep 1000" & sleep 1000 & while :; do sleep 1; done`, {
        timeoutMs: 300,
        killGraceMs: 700,
        logFile: log,
        onSpawn: (pid) => (pgid = pid),
      });
      expect(r.timedOut).to.equal(true);
      expect(r.signal).to.equal('SIGKILL');
      expect(r.durationMs).to.be.at.least(300 + 700 - 50);
      expect(describeResult(r)).to.equal('killed after the 0.3 s timeout (SIGKILL: it did not stop on SIGTERM)');
      expect(exists(-pgid)).to.equal(false);
      expect(fs.readFileSync(log, 'utf8')).to.include('SIGKILL sent to group');
    });

    it('does not wait out the grace when the group stops on SIGTERM', async function () {
      this.timeout(30_000);
      const r = await runCommand('sleep 1000', { timeoutMs: 200, killGraceMs: 20_000, logFile: log });
      expect(r.timedOut).to.equal(true);
      expect(r.signal).to.equal('SIGTERM');
      expect(r.durationMs).to.be.lessThan(5000);
    });

    it('reports a command that exits on SIGTERM with its own status as timed out, with that status', async function () {
      this.timeout(30_000);
      const r = await runCommand(`trap 'exit 42' TERM; sleep 1000 & wait`, { timeoutMs: 300, logFile: log });
      expect(r.timedOut).to.equal(true);
      expect(r.exitStatus).to.equal(42);
      expect(describeResult(r)).to.equal('killed after the 0.3 s timeout');
    });

    it('kills the group on abort and reports it as aborted, not timed out', async function () {
      this.timeout(30_000);
      const ac = new AbortController();
      let pgid = 0;
      setTimeout(() => ac.abort(), 300);
      const r = await runCommand('sleep 1000 & sleep 1000', {
        timeoutMs: 60_000,
        logFile: log,
        signal: ac.signal,
        onSpawn: (pid) => (pgid = pid),
      });
      expect(r.aborted).to.equal(true);
      expect(r.timedOut).to.equal(false);
      expect(r.signal).to.equal('SIGTERM');
      expect(describeResult(r)).to.match(/^aborted after \d+ ms$/);
      expect(exists(-pgid)).to.equal(false);
    });

    it('does not start a command whose signal is already aborted', async () => {
      const ac = new AbortController();
      ac.abort();
      let spawned = false;
      const r = await runCommand(`touch ${dir}/ran`, { timeoutMs: 10_000, logFile: log, signal: ac.signal, onSpawn: () => (spawned = true) });
      expect(r.aborted).to.equal(true);
      expect(spawned).to.equal(false);
      expect(fs.existsSync(`${dir}/ran`)).to.equal(false);
    });

    it('with a heartbeat, stops waiting for output held open by a background process 2 s after the command exits', async function () {
      this.timeout(30_000);
      let pgid = 0;
      const t0 = Date.now();
      const r = await runCommand('sleep 30 & echo started', { timeoutMs: 20_000, logFile: log, onSpawn: (p) => (pgid = p), heartbeat: () => {} });
      leftovers.push(pgid);
      expect(r.exitStatus).to.equal(0);
      expect(Date.now() - t0).to.be.lessThan(6000);
      expect(fs.readFileSync(log, 'utf8')).to.include('stopped reading output');
    });

    it('without one, returns when the command exits and notes the background process still running', async function () {
      this.timeout(30_000);
      let pgid = 0;
      const t0 = Date.now();
      const r = await runCommand('sleep 30 & echo started', { timeoutMs: 20_000, logFile: log, onSpawn: (p) => (pgid = p) });
      leftovers.push(pgid);
      expect(r.exitStatus).to.equal(0);
      expect(r.tail).to.equal('started\n');
      expect(Date.now() - t0).to.be.lessThan(2000);
      expect(fs.readFileSync(log, 'utf8')).to.include(`processes of group ${pgid} were still running when the command exited`);
    });

    it('killProcessGroup signals a live group, says false for a gone one, refuses 0, 1 and negatives', async function () {
      this.timeout(30_000);
      let pgid = 0;
      const running = runCommand('sleep 1000', { timeoutMs: 60_000, logFile: log, onSpawn: (p) => (pgid = p) });
      while (pgid === 0) await new Promise((r) => setTimeout(r, 10));
      expect(killProcessGroup(pgid)).to.equal(true);
      const r: CmdResult = await running;
      expect(r.signal).to.equal('SIGTERM');
      expect(r.timedOut).to.equal(false);
      // The group is gone once init has reaped it.
      for (let i = 0; i < 100 && exists(-pgid); i++) await new Promise((res) => setTimeout(res, 50));
      expect(killProcessGroup(pgid)).to.equal(false);
      for (const bad of [0, 1, -1, -pgid, 1.5]) expect(() => killProcessGroup(bad), String(bad)).to.throw(RangeError);
    });
  });

  describe('commands that cannot start', () => {
    it('resolves (never rejects) with status 127 when the program does not exist', async () => {
      const r = await runArgv(['xentest-no-such-program', '--flag'], { timeoutMs: 10_000, logFile: log });
      expect(r.exitStatus).to.equal(127);
      expect(r.spawnError).to.equal('xentest-no-such-program: command not found');
      expect(r.tail).to.include('xentest-no-such-program: command not found');
      expect(describeResult(r)).to.equal('could not be started: xentest-no-such-program: command not found');
      expect(fs.readFileSync(log, 'utf8')).to.include('# could not be started');
    });

    it('resolves with status 127 when the working directory does not exist', async () => {
      for (const run of [() => runCommand('true', { timeoutMs: 10_000, logFile: log, cwd: `${dir}/missing` }),
        () => runArgv(['true'], { timeoutMs: 10_000, logFile: log, cwd: `${dir}/missing` })]) {
        const r = await run();
        expect(r.exitStatus).to.equal(127);
        expect(r.tail).to.include(`working directory ${dir}/missing does not exist`);
      }
    });

    it('resolves with status 126 when the program may not be executed', async () => {
      const script = path.join(dir, 'not-executable');
      fs.writeFileSync(script, '#!/bin/sh\necho hi\n', { mode: 0o644 });
      const r = await runArgv([script], { timeoutMs: 10_000, logFile: log });
      expect(r.exitStatus).to.equal(126);
      expect(r.tail).to.include('permission denied');
    });

    it('reports the shell\'s own 127 for an unknown command in runCommand', async () => {
      const r = await runCommand('xentest-no-such-program', { timeoutMs: 10_000, logFile: log });
      expect(r.exitStatus).to.equal(127);
      expect(r.tail).to.match(/xentest-no-such-program.*not found/);
    });

    it('throws for options that are bugs: no timeout, a bad one, no log file', () => {
      expect(() => runCommand('true', { logFile: log } as never)).to.throw(RangeError, /timeoutMs/);
      expect(() => runCommand('true', { timeoutMs: Infinity, logFile: log })).to.throw(RangeError);
      expect(() => runCommand('true', { timeoutMs: 0, logFile: log })).to.throw(RangeError);
      expect(() => runCommand('true', { timeoutMs: 1000 } as never)).to.throw(TypeError, /logFile/);
    });
  });
});
