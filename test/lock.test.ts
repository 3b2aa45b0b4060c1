import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { LockBusy, acquireLock, holderAlive, readLock, type LockHolder } from '../agent/lock.js';
import { processStartTime } from '../shared/process/procstat.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const LOCK_MODULE = pathToFileURL(path.resolve(here, '../agent/lock.js')).href;

/**
 * A child that, for each "go T" line on stdin, at time T tries to take the lock, and if it
 * gets it, enters a critical section guarded by an O_EXCL marker file (so two
 * holders at once cannot go unnoticed) for HOLD_MS, then releases it. Its
 * lock code sleeps a random 0-4 ms between each check and the act relying on
 * it (raceTestHooks), so the rounds explore the interleavings. It
 * answers each round with got, busy, VIOLATION or error.
 */
const RACER = `
import { acquireLock, LockBusy, raceTestHooks } from ${JSON.stringify(LOCK_MODULE)};
import * as fs from 'node:fs';
import { createInterface } from 'node:readline';
const [lockPath, critical, holdMs] = process.argv.slice(1);
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
// Stretch every check-then-act window by 0-4 ms, as a busy machine's scheduler might.
raceTestHooks.pause = () => sleep(Math.random() * 4);
process.stdout.write('ready\\n');
for await (const line of createInterface({ input: process.stdin })) {
  // "go T": spin until T (ms on the shared wall clock) so the racers start together.
  const at = Number(line.split(' ')[1]);
  while (performance.timeOrigin + performance.now() < at);
  let answer;
  try {
    const lock = acquireLock(lockPath, 'racer ' + process.pid);
    let fd;
    try { fd = fs.openSync(critical, 'wx'); } catch { answer = 'VIOLATION'; }
    sleep(Number(holdMs));
    if (fd !== undefined) { fs.closeSync(fd); fs.unlinkSync(critical); answer = 'got'; }
    lock.release();
  } catch (e) {
    answer = e instanceof LockBusy ? 'busy' : 'error ' + e.message;
  }
  process.stdout.write(answer + '\\n');
}
`;

/** A child that takes the lock, says so, and waits to be killed. */
const HOLDER = `
import { acquireLock } from ${JSON.stringify(LOCK_MODULE)};
acquireLock(process.argv[1], 'held by a child');
process.stdout.write('held\\n');
setInterval(() => {}, 1000);
`;

function startNode(script: string, args: string[]): ChildProcess {
  return spawn(process.execPath, ['--input-type=module', '-e', script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
}

/** Lines from a child's stdout, one at a time. */
function lineReader(child: ChildProcess): () => Promise<string> {
  const queue: string[] = [];
  const waiting: ((l: string) => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => {
    const w = waiting.shift();
    if (w) w(l);
    else queue.push(l);
  });
  return () => {
    const l = queue.shift();
    return l !== undefined ? Promise.resolve(l) : new Promise((resolve) => waiting.push(resolve));
  };
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
}

/** The pid of a process that has exited and been reaped. */
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  return Number(r.stdout.toString().trim());
}

function bootId(): string {
  return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
}

function holderFor(pid: number, overrides: Partial<LockHolder> = {}): LockHolder {
  return {
    pid,
    startTime: processStartTime(pid) ?? '12345',
    hostname: os.hostname(),
    purpose: 'xentest build /etc/xentest/nightly.cfg',
    since: '2024-05-01T01:00:00.000Z',
    bootId: bootId(),
    ...overrides,
  };
}

describe('agent/lock', function () {
  let dir: string;
  let lockPath: string;
  const children: ChildProcess[] = [];

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xentest-lock-'));
    lockPath = path.join(dir, 'state', 'lock');
  });
  afterEach(async () => {
    for (const c of children.splice(0)) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGKILL');
        await exited(c);
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writes the holder as JSON, refuses a second taker while held, and release() frees it', () => {
    const lock = acquireLock(lockPath, 'xentest build nightly.cfg');
    expect(lock.holder.pid).to.equal(process.pid);
    expect(lock.holder.purpose).to.equal('xentest build nightly.cfg');
    expect(lock.holder.startTime).to.equal(processStartTime(process.pid));
    expect(lock.holder.hostname).to.equal(os.hostname());
    expect(readLock(lockPath)).to.deep.equal(lock.holder);
    expect(JSON.parse(fs.readFileSync(lockPath, 'utf8'))).to.deep.equal(lock.holder);
    expect(() => acquireLock(lockPath, 'xentest resume')).to.throw(LockBusy);
    lock.release();
    expect(fs.existsSync(lockPath)).to.equal(false);
    lock.release(); // twice is fine
    const again = acquireLock(lockPath, 'xentest resume');
    again.release();
    expect(fs.readdirSync(path.dirname(lockPath)), 'no temporary or claim files left').to.deep.equal([]);
  });

  it('release() leaves a lock file that is no longer ours', () => {
    const lock = acquireLock(lockPath, 'mine');
    const theirs = JSON.stringify(holderFor(process.pid, { purpose: 'theirs' }));
    fs.writeFileSync(lockPath, theirs);
    lock.release();
    expect(fs.readFileSync(lockPath, 'utf8')).to.equal(theirs);
  });

  it('a live holder makes acquireLock throw LockBusy naming its pid, purpose and since, and what to do', async function () {
    this.timeout(20_000);
    const child = startNode(HOLDER, [lockPath]);
    children.push(child);
    expect(await lineReader(child)()).to.equal('held');
    let busy: unknown;
    try {
      acquireLock(lockPath, 'xentest resume');
    } catch (e) {
      busy = e;
    }
    expect(busy).to.be.instanceOf(LockBusy);
    const e = busy as LockBusy;
    expect(e.holder.pid).to.equal(child.pid);
    expect(e.holder.purpose).to.equal('held by a child');
    expect(e.message).to.include(`pid ${child.pid}`).and.include('held by a child').and.include(e.holder.since);
    expect(e.message).to.include(`kill ${child.pid}`);
    expect(holderAlive(e.holder)).to.equal(true);
  });

  it('recovers the lock left by a child killed with SIGKILL', async function () {
    this.timeout(20_000);
    const child = startNode(HOLDER, [lockPath]);
    children.push(child);
    expect(await lineReader(child)()).to.equal('held');
    expect(readLock(lockPath)?.pid).to.equal(child.pid);
    child.kill('SIGKILL');
    await exited(child);
    expect(fs.existsSync(lockPath), 'the dead child left its lock file').to.equal(true);
    const lock = acquireLock(lockPath, 'after the crash');
    expect(readLock(lockPath)?.pid).to.equal(process.pid);
    lock.release();
    expect(fs.readdirSync(path.dirname(lockPath))).to.deep.equal([]);
  });

  it('recovers a lock whose pid is alive but started at another time (pid reuse)', async function () {
    this.timeout(20_000);
    const sleeper = spawn('sleep', ['30']);
    children.push(sleeper);
    await new Promise((r) => sleeper.once('spawn', r));
    const real = processStartTime(sleeper.pid!);
    expect(real).to.match(/^\d+$/);
    fs.mkdirSync(path.dirname(lockPath), { recursive: true });
    // Same pid, alive, really started at `real`.
    fs.writeFileSync(lockPath, JSON.stringify(holderFor(sleeper.pid!)));
    expect(() => acquireLock(lockPath, 'x')).to.throw(LockBusy);
    // Same pid, but the lock says it started earlier: another process had that pid.
    fs.writeFileSync(lockPath, JSON.stringify(holderFor(sleeper.pid!, { startTime: String(Number(real) - 1) })));
    const lock = acquireLock(lockPath, 'after pid reuse');
    expect(readLock(lockPath)?.purpose).to.equal('after pid reuse');
    lock.release();
  });

  it('recovers a lock taken in an earlier boot even if its pid and start time match a live process', () => {
    fs.mkdirSync(path.dirname(lockPath), { recursive: true });
    fs.writeFileSync(lockPath, JSON.stringify(holderFor(process.pid, { bootId: '00000000-0000-0000-0000-000000000000' })));
    const lock = acquireLock(lockPath, 'resume after reboot');
    expect(readLock(lockPath)?.purpose).to.equal('resume after reboot');
    lock.release();
  });

  it("reads the boot id where the rest of the agent does: a simulated host's fake reboot frees the lock", () => {
    const saved = process.env.XENTEST_ROOT;
    const root = path.join(dir, 'simroot');
    const bootIdFile = path.join(root, 'proc/sys/kernel/random/boot_id');
    fs.mkdirSync(path.dirname(bootIdFile), { recursive: true });
    fs.writeFileSync(bootIdFile, 'sim-boot-1\n');
    process.env.XENTEST_ROOT = root;
    try {
      const before = acquireLock(lockPath, 'xentest build (before the reboot)');
      expect(before.holder.bootId).to.equal('sim-boot-1');
      expect(() => acquireLock(lockPath, 'xentest resume')).to.throw(LockBusy);
      fs.writeFileSync(bootIdFile, 'sim-boot-2\n');
      const after = acquireLock(lockPath, 'xentest resume');
      expect(readLock(lockPath)?.purpose).to.equal('xentest resume');
      before.release(); // no longer ours: leaves the new holder's lock alone
      expect(readLock(lockPath)?.purpose).to.equal('xentest resume');
      after.release();
    } finally {
      if (saved === undefined) delete process.env.XENTEST_ROOT;
      else process.env.XENTEST_ROOT = saved;
    }
  });

  it('recovers a lock file that is not a lock (garbage, empty)', () => {
    fs.mkdirSync(path.dirname(lockPath), { recursive: true });
    for (const junk of ['', '{"pid":', 'hello\n', '{"pid": "12"}']) {
      fs.writeFileSync(lockPath, junk);
      expect(readLock(lockPath)).to.equal(undefined);
      acquireLock(lockPath, 'x').release();
    }
  });

  it("treats another host's lock as held (it cannot be checked from here) and says so", () => {
    fs.mkdirSync(path.dirname(lockPath), { recursive: true });
    fs.writeFileSync(lockPath, JSON.stringify(holderFor(deadPid(), { hostname: 'some-other-host.example' })));
    expect(() => acquireLock(lockPath, 'x')).to.throw(LockBusy, /some-other-host\.example.*cannot tell/);
  });

  it('sweeps temporary and claim files left by processes that died mid-way', () => {
    fs.mkdirSync(path.dirname(lockPath), { recursive: true });
    const dead = deadPid();
    fs.writeFileSync(`${lockPath}.${dead}.0123456789ab.tmp`, '{}');
    fs.writeFileSync(`${lockPath}.stale-0123456789abcdef`, JSON.stringify(holderFor(dead)));
    const live = `${lockPath}.${process.pid}.0123456789ab.tmp`;
    fs.writeFileSync(live, '{}');
    acquireLock(lockPath, 'x').release();
    expect(fs.readdirSync(path.dirname(lockPath))).to.deep.equal([path.basename(live)]);
  });

  for (const start of ['free', 'stale'] as const) {
    it(`two processes racing 50 times for a ${start} lock: never two holders, exactly one winner each round`, async function () {
      this.timeout(120_000);
      const critical = path.join(dir, 'critical');
      fs.mkdirSync(path.dirname(lockPath), { recursive: true });
      const racers = [0, 1].map(() => startNode(RACER, [lockPath, critical, '100']));
      children.push(...racers);
      const readers = racers.map(lineReader);
      for (const read of readers) expect(await read()).to.equal('ready');
      const stalePid = deadPid();
      let contended = 0;
      for (let round = 0; round < 50; round++) {
        if (start === 'stale') {
          fs.writeFileSync(lockPath, JSON.stringify(holderFor(stalePid, { since: `round ${round}` })));
        }
        const at = Date.now() + 30;
        for (const r of racers) r.stdin!.write(`go ${at}\n`);
        const answers = await Promise.all(readers.map((read) => read()));
        expect(answers, `round ${round}`).to.not.include('VIOLATION');
        expect(answers.filter((a) => a.startsWith('error')), `round ${round}`).to.deep.equal([]);
        expect(answers.filter((a) => a === 'got').length, `round ${round}: ${answers}`).to.be.at.least(1);
        if (answers.filter((a) => a === 'got').length === 1) contended++;
        expect(fs.existsSync(lockPath), `round ${round}: released`).to.equal(false);
      }
      // The racers start within microseconds of each other and hold the lock
      // for 100 ms, so nearly every round is a real contest.
      expect(contended).to.be.at.least(45);
      expect(fs.readdirSync(path.dirname(lockPath)), 'no litter').to.deep.equal([]);
    });
  }
});
