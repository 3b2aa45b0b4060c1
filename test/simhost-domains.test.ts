/**
 * The simulated Xen host's domains (scripts/simhost/runners.ts): the runner
 * unit (init/xentest-runner.service) started in dom0 at every boot and in
 * every guest `xl create` makes, as a real guest's systemd would start it;
 * guests that die (xl destroy, a crash, the host going down) take their
 * runner with them; the unit's Restart=; a guest's own hostname; faults for
 * a create that fails and a guest that hangs.
 *
 * /usr/local/bin/xentest is a stub here: it records how it was run and then
 * does what <shared>/mode-<hostname> says (hang, with a child; or exitN).
 */
import { expect } from 'chai';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimHost, type RunnerState } from '../scripts/simhost/host.js';

let work: string;
let machines = 0;
const hosts: SimHost[] = [];

interface Ran {
  argv: string[];
  cwd: string;
  pid: number;
  pgid: number;
  child: number | null;
  env: NodeJS.ProcessEnv;
  capabilities: string | null;
}

function stub(): string {
  const file = join(work, 'stub-xentest.mjs');
  if (existsSync(file)) return file;
  writeFileSync(
    file,
    `#!/usr/bin/env node
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
if (process.argv[2] === 'resume') process.exit(0);
const env = process.env;
const shared = env.XENTEST_SHARED_DIR;
const modeFile = shared + '/mode-' + env.XENTEST_HOSTNAME;
const mode = existsSync(modeFile) ? readFileSync(modeFile, 'utf8').trim() : 'hang';
const stat = readFileSync('/proc/self/stat', 'utf8');
const pgid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
let child = null;
if (mode === 'hang') child = spawn('sleep', ['1000'], { stdio: 'ignore' }).pid;
const capFile = env.XENTEST_ROOT + '/proc/xen/capabilities';
const record = { argv: process.argv.slice(2), cwd: process.cwd(), pid: process.pid, pgid, child, env, capabilities: existsSync(capFile) ? readFileSync(capFile, 'utf8') : null };
appendFileSync(shared + '/ran-' + env.XENTEST_HOSTNAME + '.jsonl', JSON.stringify(record) + '\\n');
console.log('stub runner in ' + env.XENTEST_HOSTNAME + ': ' + mode);
if (mode === 'hang') setInterval(() => {}, 1000);
else process.exitCode = Number(mode.replace('exit', ''));
`,
  );
  return file;
}

function newHost(opts: Parameters<typeof SimHost.create>[1] = {}): { h: SimHost; shared: string } {
  const n = ++machines;
  const shared = join(work, `shared${n}`);
  mkdirSync(shared, { recursive: true });
  const h = SimHost.create(join(work, `m${n}`), { xentestBin: stub(), sharedDir: shared, ...opts });
  hosts.push(h);
  return { h, shared };
}

function sh(host: SimHost, command: string, timeoutMs = 30_000): SpawnSyncReturns<string> {
  return spawnSync('/bin/sh', ['-c', command], { env: host.env(), encoding: 'utf8', timeout: timeoutMs, cwd: '/' });
}

function runs(shared: string, hostname: string): Ran[] {
  const file = join(shared, `ran-${hostname}.jsonl`);
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l)
    .map((l) => JSON.parse(l) as Ran);
}

/** The stub records its run before it prints; its log line may come a moment later. */
async function waitForLog(read: () => string, text: string, ms = 10_000): Promise<string> {
  const deadline = Date.now() + ms;
  let log = read();
  while (!log.includes(text) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    log = read();
  }
  return log;
}

async function waitForRuns(shared: string, hostname: string, count: number, ms = 10_000): Promise<Ran[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = runs(shared, hostname);
    if (r.length >= count) return r;
    if (Date.now() > deadline) throw new Error(`${hostname}'s runner ran ${r.length} times, not ${count}, within ${ms} ms`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

function alive(pid: number | null | undefined): boolean {
  if (!pid) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '');
  } catch {
    return false;
  }
}

function guestCfg(name: string): string {
  const file = join(work, `${name}.cfg`);
  writeFileSync(file, `name = "${name}"\nmemory = 512\nvcpus = 1\nkernel = "/boot/vmlinuz"\n`);
  return file;
}

describe('simulated Xen host: domains and their runners', function () {
  this.timeout(60_000);

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'simhost-domains-test-'));
  });

  after(async () => {
    for (const h of hosts) await h.powerOff();
    rmSync(work, { recursive: true, force: true });
  });

  it("starts dom0's runner at creation and at every boot, as the unit says, in dom0's view: control_d, the machine root, its hostname", async () => {
    const { h, shared } = newHost({ hostname: 'xenhost1' });
    const [first] = await waitForRuns(shared, 'xenhost1', 1);
    const r = first as Ran;
    expect(readFileSync(join(h.root, 'proc/xen/capabilities'), 'utf8')).to.equal('control_d\n');
    expect(r.capabilities).to.equal('control_d\n');
    expect(r.argv).to.deep.equal(['run']);
    expect(r.cwd).to.equal('/');
    expect(r.pgid, 'its own process group').to.equal(r.pid);
    expect(r.env).to.include({ XENTEST_HOSTNAME: 'xenhost1', XENTEST_SHARED_DIR: shared, XENTEST_ROOT: h.root, SIMHOST_DIR: h.dir });
    expect(r.env.PATH?.split(':')[0]).to.equal(h.binDir);
    expect(r.env.HOME ?? r.env.MOCHA_COLORS).to.equal(undefined);
    const dom0 = h.domain('Domain-0');
    expect(dom0?.runner).to.include({ pid: r.pid, exitStatus: null, finishedAt: null, root: h.root });
    expect(dom0?.runner?.command).to.deep.equal(['/usr/local/bin/xentest', 'run']);
    expect(dom0?.runner?.ran).to.deep.equal([process.execPath, join(h.root, 'usr/local/bin/xentest'), 'run']);
    expect(h.runnerPids()).to.deep.equal({ 'Domain-0': r.pid });
    expect(await waitForLog(() => h.runnerLog('Domain-0', 0), 'stub runner in xenhost1: hang')).to.contain('stub runner in xenhost1: hang');

    // The next boot (a reboot): the old one is stopped, a new one starts.
    writeFileSync(join(shared, 'mode-xenhost1'), 'exit4');
    expect(sh(h, 'reboot; true').status).to.equal(0);
    const b1 = await h.waitForBoot(1, 30_000);
    expect(b1.shutdown?.killed).to.include(r.pid);
    expect(alive(r.pid)).to.equal(false);
    expect(alive(r.child)).to.equal(false);
    const second = (await waitForRuns(shared, 'xenhost1', 2))[1] as Ran;
    expect(second.pid).to.not.equal(r.pid);
    const done = await h.waitForRunnerExit('Domain-0', 10_000);
    expect(done).to.include({ exitStatus: 4, signal: null });
    expect(await waitForLog(() => h.runnerLog('Domain-0', 1), 'runner exit status 4')).to.contain('runner exit status 4');
    expect(h.runnerPids()).to.deep.equal({});
  });

  it('xl create returns with the guest running and its runner started: the guest hostname, an unprivileged root, no toolstack', async () => {
    const { h, shared } = newHost();
    const started = Date.now();
    const c = sh(h, `xl create -f ${guestCfg('vm1')}`);
    const ms = Date.now() - started;
    expect(c.status, c.stderr).to.equal(0);
    expect(c.stderr).to.match(/^Parsing config from /);
    const d = h.domain('vm1');
    expect(d?.runner?.pid, 'the pid is recorded when xl create returns').to.be.a('number');
    expect(alive(d?.runner?.pid)).to.equal(true);
    const [r] = (await waitForRuns(shared, 'vm1', 1)) as [Ran];
    expect(r.pid).to.equal(d?.runner?.pid);
    expect(r.pgid).to.equal(r.pid);
    expect(r.argv).to.deep.equal(['run']);
    expect(r.cwd).to.equal('/');
    const root = join(h.dir, 'domains/vm1/root');
    expect(h.domainRoot('vm1')).to.equal(root);
    expect(r.env).to.include({ XENTEST_HOSTNAME: 'vm1', XENTEST_SHARED_DIR: shared, XENTEST_ROOT: root, XENTEST_STATE_DIR: join(root, 'var/lib/xentest') });
    expect(r.capabilities).to.equal('');
    expect(r.env.PATH?.split(':')).to.not.include(h.binDir);
    expect(r.env.HOME ?? r.env.MOCHA_COLORS).to.equal(undefined);
    expect(readFileSync(join(root, 'etc/hostname'), 'utf8')).to.equal('vm1\n');
    expect(h.runnerPids()).to.have.keys('Domain-0', 'vm1');
    expect(await waitForLog(() => h.runnerLog('vm1'), 'stub runner in vm1: hang')).to.contain('stub runner in vm1: hang');

    // A runner that exits leaves its domain running; its exit status is recorded.
    writeFileSync(join(shared, 'mode-vm2'), 'exit0');
    writeFileSync(join(shared, 'mode-vm3'), 'exit9');
    expect(sh(h, `xl create ${guestCfg('vm2')}`).status).to.equal(0);
    expect(sh(h, `xl create ${guestCfg('vm3')}`).status).to.equal(0);
    expect(await h.waitForRunnerExit('vm2', 10_000)).to.include({ exitStatus: 0, signal: null });
    expect(await h.waitForRunnerExit('vm3', 10_000)).to.include({ exitStatus: 9 });
    const list = sh(h, 'xl list').stdout;
    expect(list).to.match(/\nvm2 +2 /);
    expect(list).to.match(/\nvm3 +3 /);
    expect(h.runnerPids()).to.have.keys('Domain-0', 'vm1');
    console.log(`      (xl create took ${ms} ms)`);
  });

  it('xl destroy and xl shutdown end the runner with its process group; killDomain crashes a guest the same way', async () => {
    const { h, shared } = newHost();
    for (const n of ['g1', 'g2', 'g3']) expect(sh(h, `xl create ${guestCfg(n)}`).status).to.equal(0);
    const ran = {
      g1: ((await waitForRuns(shared, 'g1', 1))[0]) as Ran,
      g2: ((await waitForRuns(shared, 'g2', 1))[0]) as Ran,
      g3: ((await waitForRuns(shared, 'g3', 1))[0]) as Ran,
    };
    for (const r of Object.values(ran)) expect(alive(r.child), 'the stub started a child').to.equal(true);

    expect(sh(h, 'xl destroy g1').status).to.equal(0);
    expect(alive(ran.g1.pid)).to.equal(false);
    expect(alive(ran.g1.child)).to.equal(false);

    const id = h.domain('g2')?.id as number;
    const s = sh(h, `xl shutdown ${id}`);
    expect(s.status).to.equal(0);
    expect(alive(ran.g2.pid)).to.equal(false);
    expect(alive(ran.g2.child)).to.equal(false);

    expect(h.killDomain('g3')).to.equal(true);
    expect(alive(ran.g3.pid)).to.equal(false);
    expect(alive(ran.g3.child)).to.equal(false);
    expect(h.killDomain('g3')).to.equal(false);
    expect(h.running().domains).to.deep.equal([]);
    expect(h.runnerPids()).to.have.keys('Domain-0');

    // The same name can be created again: a fresh runner.
    expect(sh(h, `xl create ${guestCfg('g1')}`).status).to.equal(0);
    const again = (await waitForRuns(shared, 'g1', 2))[1] as Ran;
    expect(again.pid).to.not.equal(ran.g1.pid);
    expect(h.runnerPids().g1).to.equal(again.pid);
  });

  it('a power cycle kills every runner, empties the domain list, and starts a new dom0 runner', async () => {
    const { h, shared } = newHost({ hostname: 'pc' });
    const dom0 = ((await waitForRuns(shared, 'pc', 1))[0]) as Ran;
    for (const n of ['a', 'b']) expect(sh(h, `xl create ${guestCfg(n)}`).status).to.equal(0);
    const a = ((await waitForRuns(shared, 'a', 1))[0]) as Ran;
    const b = ((await waitForRuns(shared, 'b', 1))[0]) as Ran;
    const started = Date.now();
    await h.powerCycle();
    const ms = Date.now() - started;
    for (const r of [dom0, a, b]) {
      expect(alive(r.pid)).to.equal(false);
      expect(alive(r.child)).to.equal(false);
    }
    expect(h.running().domains).to.deep.equal([]);
    const next = (await waitForRuns(shared, 'pc', 2))[1] as Ran;
    expect(h.runnerPids()).to.deep.equal({ 'Domain-0': next.pid });
    console.log(`      (power cycle with three runners took ${ms} ms)`);
  });

  it('createFails: xl create fails with that stderr and status, nothing is created or started', async () => {
    const { h, shared } = newHost();
    h.setFaults({ createFails: { bad: { stderr: 'libxl: error: injected: cannot make domain: -3', exitStatus: 3 } } });
    const c = sh(h, `xl create ${guestCfg('bad')}`);
    expect(c.status).to.equal(3);
    expect(c.stderr).to.contain('libxl: error: injected: cannot make domain: -3\n');
    expect(h.running().domains).to.deep.equal([]);
    expect(h.runnerLog('bad')).to.equal('');
    expect(existsSync(h.domainRoot('bad'))).to.equal(false);
    // Another name is untouched; the default status is 1.
    expect(sh(h, `xl create ${guestCfg('good')}`).status).to.equal(0);
    h.setFaults({ createFails: { good2: { stderr: 'nope' } } });
    expect(sh(h, `xl create ${guestCfg('good2')}`).status).to.equal(1);
    await waitForRuns(shared, 'good', 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(runs(shared, 'bad')).to.deep.equal([]);
  });

  it('domainHangs: the guest is created and listed but its runner never starts', async () => {
    const { h, shared } = newHost();
    h.setFaults({ domainHangs: ['stuck'] });
    expect(sh(h, `xl create ${guestCfg('stuck')}`).status).to.equal(0);
    expect(sh(h, 'xl list stuck').status).to.equal(0);
    expect(h.domain('stuck')).to.include({ hung: true, runner: null });
    await new Promise((r) => setTimeout(r, 500));
    expect(runs(shared, 'stuck')).to.deep.equal([]);
    expect(h.runnerPids()).to.have.keys('Domain-0');
    // Destroyed and created again without the fault: it boots.
    h.setFaults({});
    expect(sh(h, 'xl destroy stuck').status).to.equal(0);
    expect(sh(h, `xl create ${guestCfg('stuck')}`).status).to.equal(0);
    await waitForRuns(shared, 'stuck', 1);
  });

  it('honours the unit\'s Restart=on-abnormal and RestartSec=: a runner killed by a signal starts again, one that exits or gets SIGTERM does not', async () => {
    const { h, shared } = newHost();
    expect(sh(h, `xl create ${guestCfg('r1')}`).status).to.equal(0);
    const [first] = (await waitForRuns(shared, 'r1', 1)) as [Ran];
    const killedAt = Date.now();
    // Its whole group, so the stub's child goes too: the restart is what is tested here.
    process.kill(-first.pid, 'SIGKILL');
    const second = (await waitForRuns(shared, 'r1', 2))[1] as Ran;
    const ms = Date.now() - killedAt;
    expect(ms, 'RestartSec=2s').to.be.within(1900, 10_000);
    expect(second.pid).to.not.equal(first.pid);
    expect(second.env).to.include({ XENTEST_HOSTNAME: 'r1', XENTEST_ROOT: h.domainRoot('r1') });
    expect(h.domain('r1')?.runner).to.include({ pid: second.pid, restarts: 1, restartAt: null, exitStatus: null, finishedAt: null });
    expect(h.runnerPids().r1).to.equal(second.pid);
    expect(await waitForLog(() => h.runnerLog('r1'), 'restart 1: ExecStart=')).to.contain(
      'runner killed by SIGKILL; Restart=on-abnormal: starting it again in 2 s',
    );

    // Killed again, and the runner started then exits 3 on its own: that one is not restarted.
    writeFileSync(join(shared, 'mode-r1'), 'exit3');
    process.kill(-second.pid, 'SIGKILL');
    const done = await h.waitForRunnerExit('r1', 15_000);
    expect(done).to.include({ exitStatus: 3, signal: null, restarts: 2, restartAt: null });
    expect(await waitForLog(() => h.runnerLog('r1'), 'runner exit status 3')).to.match(/runner exit status 3\n$/);

    // SIGTERM is a clean end for systemd (it is how it stops a unit): no restart.
    expect(sh(h, `xl create ${guestCfg('r2')}`).status).to.equal(0);
    const [t] = (await waitForRuns(shared, 'r2', 1)) as [Ran];
    process.kill(-t.pid, 'SIGTERM');
    expect(await h.waitForRunnerExit('r2', 10_000)).to.include({ signal: 'SIGTERM', restarts: 0, restartAt: null });

    // A guest destroyed while its runner waits to be restarted stays without one.
    expect(sh(h, `xl create ${guestCfg('r3')}`).status).to.equal(0);
    const [r3] = (await waitForRuns(shared, 'r3', 1)) as [Ran];
    process.kill(-r3.pid, 'SIGKILL');
    await waitForLog(() => h.runnerLog('r3'), 'starting it again in 2 s');
    expect(h.domain('r3')?.runner?.restartAt).to.be.a('string');
    expect(sh(h, 'xl destroy r3').status).to.equal(0);

    // Nothing more starts: the runs so far are all there will be.
    await new Promise((r) => setTimeout(r, 3000));
    expect(runs(shared, 'r1')).to.have.length(3);
    expect(runs(shared, 'r2')).to.have.length(1);
    expect(runs(shared, 'r3')).to.have.length(1);
    expect(h.runnerPids()).to.have.keys('Domain-0');
  });

  it("a guest's hostname is its own /etc/hostname: its xl name on a fresh disk, what setGuestHostname wrote from its next boot on", async () => {
    const { h, shared } = newHost();
    h.setGuestHostname('named', 'named-typo');
    expect(sh(h, `xl create ${guestCfg('named')}`).status).to.equal(0);
    const [r] = (await waitForRuns(shared, 'named-typo', 1)) as [Ran];
    expect(r.env.XENTEST_HOSTNAME).to.equal('named-typo');
    expect(readFileSync(join(h.domainRoot('named'), 'etc/hostname'), 'utf8')).to.equal('named-typo\n');
    expect(h.runnerPids().named).to.equal(r.pid);
    // Kept across creates, as a disk keeps it; fixed, it takes effect at the next boot.
    expect(sh(h, 'xl destroy named').status).to.equal(0);
    h.setGuestHostname('named', 'named');
    expect(sh(h, `xl create ${guestCfg('named')}`).status).to.equal(0);
    const [again] = (await waitForRuns(shared, 'named', 1)) as [Ran];
    expect(again.env.XENTEST_HOSTNAME).to.equal('named');
    expect(runs(shared, 'named-typo')).to.have.length(1);
  });

  it("reads the runner unit given (ExecStart, Environment=), adds runnerEnv, and starts a paused guest's runner at unpause", async () => {
    const unit = join(work, 'test-runner.service');
    writeFileSync(unit, '[Unit]\nDescription=test runner\n\n[Service]\nType=exec\nEnvironment="FROM_UNIT=yes"\nExecStart=/usr/local/bin/xentest run --verbose\n');
    const { h, shared } = newHost({ runnerUnit: unit, runnerEnv: { EXTRA: '1' }, hostname: 'unit' });
    const [d0] = (await waitForRuns(shared, 'unit', 1)) as [Ran];
    expect(d0.argv).to.deep.equal(['run', '--verbose']);
    expect(d0.env).to.include({ FROM_UNIT: 'yes', EXTRA: '1' });
    expect(sh(h, `xl create -p ${guestCfg('p1')}`).status).to.equal(0);
    expect(h.domain('p1')?.runner).to.equal(null);
    await new Promise((r) => setTimeout(r, 300));
    expect(runs(shared, 'p1')).to.deep.equal([]);
    expect(sh(h, 'xl unpause p1').status).to.equal(0);
    const [p] = (await waitForRuns(shared, 'p1', 1)) as [Ran];
    expect(p.env).to.include({ FROM_UNIT: 'yes', EXTRA: '1', XENTEST_HOSTNAME: 'p1' });
    expect(sh(h, 'xl pause p1').status).to.equal(0);
    expect(sh(h, 'xl unpause p1').status).to.equal(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(runs(shared, 'p1'), 'one runner per guest boot').to.have.length(1);
  });

  it('without sharedDir or runnerUnit, or with runnerUnit null, no runner starts anywhere; a missing executable is exit 203', async () => {
    const plain = SimHost.create(join(work, `m${++machines}`), { xentestBin: stub() });
    hosts.push(plain);
    expect(plain.domain('Domain-0')?.runner).to.equal(undefined);
    expect(sh(plain, `xl create ${guestCfg('quiet')}`).status).to.equal(0);
    expect(plain.domain('quiet')?.runner).to.equal(undefined);
    expect(plain.runnerPids()).to.deep.equal({});

    const { h } = newHost({ runnerUnit: null });
    expect(h.domain('Domain-0')?.runner).to.equal(undefined);
    expect(sh(h, `xl create ${guestCfg('none')}`).status).to.equal(0);
    expect(h.domain('none')?.runner).to.equal(undefined);
    expect(h.runnerPids()).to.deep.equal({});

    const unit = join(work, 'missing-runner.service');
    writeFileSync(unit, '[Service]\nExecStart=/usr/local/bin/no-such-runner run\n');
    const { h: h2 } = newHost({ runnerUnit: unit });
    const run: RunnerState = await h2.waitForRunnerExit('Domain-0', 10_000);
    expect(run).to.include({ exitStatus: 203, pid: null });
  });
});
