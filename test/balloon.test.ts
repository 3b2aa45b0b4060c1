/**
 * The balloon-driver suite against the simulated host's balloon driver, on
 * each interface: a guest with today's sysfs, a XenLinux guest with
 * /proc/xen/balloon, and xl mem-set from dom0. Every scenario's documented
 * outcome is asserted, a planted driver bug makes the matching scenario fail
 * with what was expected and what came back, and a run killed in its rapid
 * phase leaves the target where it started once the suite runs again or
 * cleans up.
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostWithBalloonGuests } from './support/balloon-guests.js';
import { SimHost } from '../scripts/simhost/host.js';
import { parseKernelNumber } from '../scripts/simhost/balloon.js';
import { XENTEST_BIN } from './support/cli.js';

const SYSFS = 'sys/devices/system/xen_memory/xen_memory0';
const AS_ROOT = process.geteuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  results: Record<string, { status: string; reason: string }>;
}

function parseResults(stdout: string): Run['results'] {
  const out: Run['results'] = {};
  let current: string | null = null;
  for (const line of stdout.split('\n')) {
    const head = /^\[\d+\/\d+\] ([a-z-]+) \(/.exec(line);
    if (head) current = head[1] as string;
    const res = /^ {2}(GOOD|FAIL|TEST_NA): (.*)$/.exec(line);
    if (res && current) out[current] = { status: res[1] as string, reason: res[2] as string };
  }
  return out;
}

function balloon(env: NodeJS.ProcessEnv, args: string[], extraEnv: NodeJS.ProcessEnv = {}): Run {
  const r = spawnSync(process.execPath, [XENTEST_BIN, 'balloon', '--settle', '10', ...args], { env: { ...env, ...extraEnv }, encoding: 'utf8', timeout: 180_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, results: parseResults(r.stdout) };
}

function statuses(r: Run): Record<string, string> {
  return Object.fromEntries(Object.entries(r.results).map(([k, v]) => [k, v.status]));
}

/** Run a small ES module in a domain's environment (its balloon driver's hook loaded); it prints JSON. */
function inDomain(env: NodeJS.ProcessEnv, code: string): unknown {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { env, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`in-domain script failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const WRITE = `
import { openSync, writeSync, closeSync, readFileSync, constants } from 'node:fs';
const write = (f, text) => {
  let fd;
  try { fd = openSync(f, constants.O_WRONLY); } catch (e) { return { at: 'open', code: e.code }; }
  try { return { written: writeSync(fd, Buffer.from(text, 'latin1')) }; } catch (e) { return { at: 'write', code: e.code, errno: e.errno, message: e.message }; } finally { closeSync(fd); }
};
const read = (f) => readFileSync(f, 'utf8');
`;

describe('balloon suite on the simulated balloon driver', function () {
  this.timeout(240_000);
  let work: string;
  let host: SimHost;
  let sysfsEnv: NodeJS.ProcessEnv;
  let procEnv: NodeJS.ProcessEnv;
  let sysfsRoot: string;
  let procRoot: string;

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'xentest-balloon-'));
    host = hostWithBalloonGuests(work, { sysfs: 'vm-sysfs', proc: 'vm-proc' });
    sysfsEnv = host.guestEnv('vm-sysfs');
    procEnv = host.guestEnv('vm-proc');
    sysfsRoot = host.domainRoot('vm-sysfs');
    procRoot = host.domainRoot('vm-proc');
  });
  after(() => rmSync(work, { recursive: true, force: true }));
  // Each test starts from the guests' own 512 MiB, whatever the one before left (it asserted that itself).
  afterEach(() => {
    for (const vm of ['vm-sysfs', 'vm-proc']) spawnSync('xl', ['mem-set', vm, '512'], { env: host.env() });
    for (const root of [sysfsRoot, procRoot, host.root]) rmSync(join(root, 'var/lib/xentest/balloon-restore.json'), { force: true });
    spawnSync('sleep', ['0.5']);
  });

  const sysfsTarget = () => Number(readFileSync(join(sysfsRoot, SYSFS, 'target_kb'), 'utf8'));
  const procTarget = () => Number(/Requested target:\s+(\d+) kB/.exec(readFileSync(join(procRoot, 'proc/xen/balloon'), 'utf8'))?.[1]);

  describe('the simulated driver (what the suite relies on)', () => {
    it('gives each guest the interface its kernel has', () => {
      expect(existsSync(join(sysfsRoot, SYSFS, 'target_kb'))).to.equal(true);
      expect(existsSync(join(sysfsRoot, 'proc/xen/balloon'))).to.equal(false);
      expect(existsSync(join(procRoot, 'proc/xen/balloon'))).to.equal(true);
      expect(existsSync(join(procRoot, SYSFS))).to.equal(false);
      expect(existsSync(join(host.root, SYSFS, 'target_kb'))).to.equal(true);
    });

    it('parses numbers as simple_strtoull and memparse do', () => {
      expect(parseKernelNumber('524288\n', false)).to.equal(524288n);
      expect(parseKernelNumber('0x10000', false)).to.equal(65536n);
      expect(parseKernelNumber('0777', false)).to.equal(511n);
      expect(parseKernelNumber('089', false)).to.equal(0n);
      expect(parseKernelNumber(' 5', false)).to.equal(0n);
      expect(parseKernelNumber('garbage', false)).to.equal(0n);
      expect(parseKernelNumber('256M', true)).to.equal(256n << 20n);
      expect(parseKernelNumber('1g', true)).to.equal(1n << 30n);
      expect(parseKernelNumber('256M', false)).to.equal(256n);
      expect(parseKernelNumber('18446744073709551617', false)).to.equal(1n);
    });

    it('sysfs: target_kb and target take effect at once, the allocation follows with a lag', () => {
      const env = { ...sysfsEnv, XENTEST_SIM_BALLOON_KIB_PER_S: '262144' };
      const dir = join(sysfsRoot, SYSFS);
      const r = inDomain(
        env,
        `${WRITE}
        const d = ${JSON.stringify(dir)};
        const w1 = write(d + '/target_kb', '0x30000\\n');
        const t1 = read(d + '/target_kb'), c1 = read(d + '/info/current_kb');
        await new Promise((r) => setTimeout(r, 1800));
        const c2 = read(d + '/info/current_kb'), low = read(d + '/info/low_kb');
        const w2 = write(d + '/target', '256M\\n');
        const t2 = read(d + '/target_kb'), bytes = read(d + '/target');
        const ro = write(d + '/info/current_kb', '1\\n');
        console.log(JSON.stringify({ w1, t1, c1, c2, low, w2, t2, bytes, ro }));`,
      ) as Record<string, unknown>;
      expect(r.w1).to.deep.equal({ written: 8 });
      expect(r.t1).to.equal('196608\n');
      // 320 MiB to give back at 256 MiB/s: right after the write hardly any of it is gone.
      expect(Number(r.c1)).to.be.above(196608 + 262144);
      expect(r.c2).to.equal('196608\n');
      expect(r.low).to.equal('327680\n');
      expect(r.w2).to.deep.equal({ written: 5 });
      expect(r.t2).to.equal('262144\n');
      expect(r.bytes).to.equal(`${262144 * 1024}\n`);
      expect(r.ro).to.deep.equal({ at: 'open', code: 'EACCES' });
    });

    it('/proc/xen/balloon: the 2.6.18-xen read format, EBADMSG, EFBIG, 64 bytes and memparse', () => {
      const f = join(procRoot, 'proc/xen/balloon');
      const r = inDomain(
        procEnv,
        `${WRITE}
        const f = ${JSON.stringify(f)};
        const text = read(f);
        const runt = write(f, '\\n');
        const long = write(f, '200M'.padEnd(64, ' ') + '\\n');
        const limit = write(f, '200M'.padEnd(63, ' ') + '\\n');
        const after = read(f);
        const back = write(f, '524288K\\n');
        console.log(JSON.stringify({ text, runt, long, limit, after, back }));`,
      ) as Record<string, { code?: string; errno?: number; message?: string; written?: number } | string>;
      // balloon_read's sprintf: "Label:" padded to 20 columns, then %8lu.
      const line = (label: string, v: string) => `${(label + ':').padEnd(20)}${v.padStart(8)} kB\n`;
      expect(r.text).to.equal(
        line('Current allocation', '524288') + line('Requested target', '524288') + line('Low-mem balloon', '0') + line('High-mem balloon', '0') + line('Driver pages', '0') + line('Xen hard limit', '???'),
      );
      expect(r.runt).to.deep.include({ at: 'write', code: 'EBADMSG', message: 'EBADMSG: bad message, write' });
      expect((r.runt as { errno: number }).errno).to.be.below(0);
      expect(r.long).to.deep.include({ at: 'write', code: 'EFBIG' });
      expect(r.limit).to.deep.equal({ written: 64 });
      expect(r.after).to.match(/^Requested target: {5}204800 kB$/m);
      expect(r.back).to.deep.equal({ written: 8 });
    });

    it('leaves every other file to the real filesystem', () => {
      const plain = join(sysfsRoot, 'plain.txt');
      const r = inDomain(sysfsEnv, `${WRITE} console.log(JSON.stringify(write(${JSON.stringify(plain)}, 'x')));`.replace("constants.O_WRONLY", "'w'"));
      expect(r).to.deep.equal({ written: 1 });
      expect(readFileSync(plain, 'utf8')).to.equal('x');
    });

    (AS_ROOT ? it : it.skip)('as root without CAP_SYS_ADMIN a write is EPERM; user nobody cannot open the file (0644 root)', () => {
      const f = join(sysfsRoot, SYSFS, 'target_kb');
      const code = `${WRITE} console.log(JSON.stringify(write(${JSON.stringify(f)}, '524288\\n')));`;
      const noCap = spawnSync('setpriv', ['--inh-caps=-sys_admin', '--bounding-set=-sys_admin', process.execPath, '--input-type=module', '-e', code], { env: sysfsEnv, encoding: 'utf8' });
      expect(JSON.parse(noCap.stdout)).to.deep.include({ at: 'write', code: 'EPERM' });
      const nobody = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e', code], { env: sysfsEnv, encoding: 'utf8' });
      expect(JSON.parse(nobody.stdout)).to.deep.equal({ at: 'open', code: 'EACCES' });
    });

    it('xl mem-set sets the target, xl list follows with the lag, xenstore-read answers', () => {
      const env = { ...host.env(), XENTEST_SIM_BALLOON_KIB_PER_S: '32768' };
      const sh = (cmd: string) => spawnSync('/bin/sh', ['-c', cmd], { env, encoding: 'utf8' });
      const id = /vm-sysfs\s+(\d+)/.exec(sh('xl list').stdout)?.[1];
      expect(sh('xl mem-set vm-sysfs 448').status).to.equal(0);
      expect(sh(`xenstore-read /local/domain/${id}/memory/target`).stdout).to.equal('458752\n');
      expect(Number(/vm-sysfs\s+\d+\s+(\d+)/.exec(sh('xl list vm-sysfs').stdout)?.[1])).to.be.above(480);
      spawnSync('sleep', ['2.2']);
      expect(Number(/vm-sysfs\s+\d+\s+(\d+)/.exec(sh('xl list vm-sysfs').stdout)?.[1])).to.equal(448);
      expect(sysfsTarget()).to.equal(458752);
      expect(sh(`xenstore-read /local/domain/${id}/memory/static-max`).stdout).to.equal('655360\n');
      const missing = sh('xenstore-read /local/domain/99/memory/target');
      expect(missing.status).to.equal(1);
      expect(missing.stderr).to.equal("xenstore-read: couldn't read path /local/domain/99/memory/target\n");
      expect(sh('xl mem-set vm-sysfs 512').status).to.equal(0);
    });
  });

  describe('every scenario, its documented outcome per interface', () => {
    it('sysfs in a guest', () => {
      const r = balloon(sysfsEnv, ['--floor', '64m']);
      expect(r.status, r.stdout + r.stderr).to.equal(0);
      expect(statuses(r)).to.deep.equal({
        'read-state': 'GOOD',
        'raise-target': 'GOOD',
        'lower-target': 'GOOD',
        'allocate-then-lower': 'GOOD',
        'above-host-ram': 'GOOD',
        'too-low': 'TEST_NA',
        'non-root-write': AS_ROOT ? 'GOOD' : 'TEST_NA',
        'one-byte-write': 'TEST_NA',
        'long-write': 'GOOD',
        'rapid-targets': 'GOOD',
      });
      // static-max is 640 MiB, but Xen gives a guest no more than the toolstack's target + 1 MiB (max_pages, as on a
      // real Xen 4.17.5): the target reads the raise, the allocation stops there.
      expect(r.results['raise-target']?.reason).to.equal("target 524288 kB -> 589824 kB; allocation 524288 kB -> 525312 kB (what Xen gives: the toolstack's target + 1 MiB, 525312 kB)");
      expect(r.results['above-host-ram']?.reason).to.equal('target 1073741824 kB accepted; allocation stopped at 525312 kB');
      expect(r.results['too-low']?.reason).to.match(/^a 4 kB target is below the floor \(65536 kB\) and .* does not refuse it; run with --floor 0/);
      expect(r.results['one-byte-write']?.reason).to.include('sysfs has no length check');
      expect(r.results['long-write']?.reason).to.equal('accepted (accepted (100 bytes written)), target 524288 kB');
      expect(r.results['allocate-then-lower']?.reason).to.match(/the allocation survived$/);
      expect(r.stdout).to.match(/^sysfs \(.*\): (8|7) GOOD, 0 FAIL, (2|3) TEST_NA$/m);
      expect(sysfsTarget()).to.equal(524288);
      expect(existsSync(join(sysfsRoot, 'var/lib/xentest/balloon-restore.json'))).to.equal(false);
    });

    it('sysfs with --floor 0: a 4 kB target is taken, the allocation stops at what the domain holds, and is put back', () => {
      const r = balloon(sysfsEnv, ['--floor', '0', '--only', 'too-low']);
      expect(r.status, r.stdout).to.equal(0);
      expect(r.results['too-low']?.status).to.equal('GOOD');
      const stopped = Number(/the allocation stopped at (\d+) kB/.exec(r.results['too-low']?.reason ?? '')?.[1]);
      expect(stopped).to.be.above(32 * 1024);
      expect(sysfsTarget()).to.equal(524288);
    });

    it('/proc/xen/balloon in a XenLinux guest', () => {
      const r = balloon(procEnv, ['--floor', '64m']);
      expect(r.status, r.stdout + r.stderr).to.equal(0);
      expect(statuses(r)).to.deep.equal({
        'read-state': 'GOOD',
        'raise-target': 'GOOD',
        'lower-target': 'GOOD',
        'allocate-then-lower': 'GOOD',
        'above-host-ram': 'GOOD',
        'too-low': 'TEST_NA',
        'non-root-write': AS_ROOT ? 'GOOD' : 'TEST_NA',
        'one-byte-write': 'GOOD',
        'long-write': 'GOOD',
        'rapid-targets': 'GOOD',
      });
      expect(r.results['read-state']?.reason).to.equal('allocation 524288 kB, target 524288 kB, balloon 0 kB low, 0 kB high, Xen hard limit ???');
      // No headroom (maxmem = memory): Xen stops it at once, and says so in "Xen hard limit".
      expect(r.results['above-host-ram']?.reason).to.equal('target 1073741824 kB accepted; allocation stopped at 524288 kB, Xen hard limit 524288 kB');
      expect(r.results['one-byte-write']?.reason).to.equal('EBADMSG');
      expect(r.results['long-write']?.reason).to.equal('65 bytes: EFBIG; 64 bytes: accepted');
      if (AS_ROOT) expect(r.results['non-root-write']?.reason).to.equal('nobody: EACCES at open; without CAP_SYS_ADMIN: EPERM at write');
      expect(procTarget()).to.equal(524288);
    });

    it('xl mem-set from dom0, against dom0 itself and against a guest', () => {
      const self = balloon(host.env(), ['--interface', 'xl', '--floor', '512m', '--rapid', '5']);
      expect(self.status, self.stdout + self.stderr).to.equal(0);
      expect(statuses(self)).to.deep.equal({
        'read-state': 'GOOD',
        'raise-target': 'TEST_NA',
        'lower-target': 'GOOD',
        'allocate-then-lower': 'GOOD',
        'above-host-ram': 'GOOD',
        'too-low': 'GOOD',
        'non-root-write': AS_ROOT ? 'GOOD' : 'TEST_NA',
        'one-byte-write': 'TEST_NA',
        'long-write': 'TEST_NA',
        'rapid-targets': 'GOOD',
      });
      expect(self.results['too-low']?.reason).to.equal('refused (libxl: error: libxl_mem.c:287:libxl_set_memory_target: New target 4 for dom0 is below the minimum threshold / cannot set domid 0 dynamic max memory to : 4k)');
      expect(self.results['above-host-ram']?.reason).to.match(/^refused \(.*memory_dynamic_max must be less than or equal to memory_static_max \/ cannot set domid 0 dynamic max memory to : \d+k\); target still 1048576 kB$/);
      // dom0 has no memory/static-max in xenstore before its first xl mem-set (as on a real Xen).
      expect(self.results['raise-target']?.reason).to.include('the static maximum cannot be read');
      if (AS_ROOT) expect(self.results['non-root-write']?.reason).to.include('cannot init xl context');
      expect(self.results['above-host-ram']?.reason).to.include('libxl_mem.c:278:libxl_set_memory_target: memory_dynamic_max');
      // Against itself, dom0's own memory is allocated and xl list follows what its driver holds.
      expect(self.results['allocate-then-lower']?.reason).to.match(/the allocation survived$/);

      const guest = balloon(host.env(), ['--interface', 'xl', '--domain', 'vm-sysfs', '--floor', '64m', '--rapid', '5', '--only', 'raise-target', '--only', 'allocate-then-lower', '--only', 'too-low']);
      expect(guest.status, guest.stdout + guest.stderr).to.equal(0);
      expect(statuses(guest)).to.deep.equal({ 'raise-target': 'GOOD', 'allocate-then-lower': 'TEST_NA', 'too-low': 'TEST_NA' });
      expect(guest.results['raise-target']?.reason).to.equal('target 524288 kB -> 589824 kB; allocation 524288 kB -> 589824 kB');
      expect(guest.results['allocate-then-lower']?.reason).to.include('acts on another domain');
      expect(sysfsTarget()).to.equal(524288);
    });

    it('xentest balloon in dom0 without --interface runs sysfs and xl', () => {
      const r = balloon(host.env(), ['--floor', '512m', '--rapid', '3', '--only', 'read-state']);
      expect(r.status, r.stdout).to.equal(0);
      expect(r.stdout).to.match(/^sysfs \(.*xen_memory0\): 1 GOOD, 0 FAIL, 0 TEST_NA$/m);
      expect(r.stdout).to.match(/^xl \(xl mem-set 0\): 1 GOOD, 0 FAIL, 0 TEST_NA$/m);
    });
  });

  describe('a planted driver bug fails the matching scenario, saying what was expected and what came back', () => {
    it('target-not-applied: raise-target', () => {
      const r = balloon(sysfsEnv, ['--floor', '64m', '--only', 'raise-target'], { XENTEST_SIM_BALLOON_BUG: 'target-not-applied' });
      expect(r.status).to.equal(1);
      expect(r.results['raise-target']).to.deep.equal({ status: 'FAIL', reason: 'after asking for 589824 kB: expected the target to read 589824 kB, it reads 524288 kB' });
    });

    it('runt-einval: one-byte-write on /proc', () => {
      const r = balloon(procEnv, ['--floor', '64m', '--only', 'one-byte-write'], { XENTEST_SIM_BALLOON_BUG: 'runt-einval' });
      expect(r.status).to.equal(1);
      expect(r.results['one-byte-write']).to.deep.equal({ status: 'FAIL', reason: 'expected EBADMSG, got EINVAL at write' });
    });

    it('current-stuck: lower-target', () => {
      const r = balloon(sysfsEnv, ['--floor', '64m', '--only', 'lower-target', '--settle', '2'], { XENTEST_SIM_BALLOON_BUG: 'current-stuck' });
      expect(r.status).to.equal(1);
      expect(r.results['lower-target']?.status).to.equal('FAIL');
      expect(r.results['lower-target']?.reason).to.equal('expected the allocation to follow the target down to 458752 kB within 2 s, it is 524288 kB');
      expect(sysfsTarget()).to.equal(524288);
    });

    it('takes-used-pages: allocate-then-lower', () => {
      const r = balloon(sysfsEnv, ['--floor', '64m', '--only', 'allocate-then-lower'], { XENTEST_SIM_BALLOON_BUG: 'takes-used-pages' });
      expect(r.status).to.equal(1);
      expect(r.results['allocate-then-lower']?.status).to.equal('FAIL');
      // Fallen to the target: below what the allocating process holds, or (if the rest held more) just at the target.
      expect(r.results['allocate-then-lower']?.reason).to.match(
        /^expected the allocation to (stay above what the allocating process holds \(\d+ kB; the domain held \d+ kB\), it fell to \d+ kB|stop above the target \d+ kB \(the domain holds \d+ kB\), it is \d+ kB)$/,
      );
      expect(sysfsTarget()).to.equal(524288);
    });
  });

  describe('interrupted in the rapid phase', () => {
    /** Start the rapid phase alone and stop it with `signal` once it is well under way. */
    async function interrupt(env: NodeJS.ProcessEnv, signal: NodeJS.Signals): Promise<{ code: number | null; signal: string | null; stdout: string }> {
      const child = spawn(process.execPath, [XENTEST_BIN, 'balloon', '--floor', '64m', '--only', 'rapid-targets', '--rapid', '1000', '--rapid-seconds', '120'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      await new Promise<void>((resolve) => {
        const t = setInterval(() => {
          if (stdout.includes('[1/1] rapid-targets')) {
            clearInterval(t);
            setTimeout(resolve, 400);
          }
        }, 20);
      });
      child.kill(signal);
      return new Promise((resolve) => child.on('exit', (code, sig) => resolve({ code, signal: sig, stdout })));
    }
    const record = () => join(sysfsRoot, 'var/lib/xentest/balloon-restore.json');

    it('SIGKILL, then `xentest balloon --restore`: the target is where it started', async () => {
      const k = await interrupt(sysfsEnv, 'SIGKILL');
      expect(k.signal).to.equal('SIGKILL');
      expect(sysfsTarget()).to.not.equal(524288);
      expect(JSON.parse(readFileSync(record(), 'utf8'))).to.include({ interface: 'sysfs', targetKb: 524288 });
      const r = balloon(sysfsEnv, ['--restore']);
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/^restoring the target of 524288 kB that an interrupted run \(pid \d+, .*\) left$/m);
      expect(sysfsTarget()).to.equal(524288);
      expect(existsSync(record())).to.equal(false);
      expect(balloon(sysfsEnv, ['--restore']).stdout).to.equal('nothing to restore\n');
    });

    it('SIGKILL, then the suite run again: it puts the target back first', async () => {
      await interrupt(sysfsEnv, 'SIGKILL');
      expect(sysfsTarget()).to.not.equal(524288);
      const r = balloon(sysfsEnv, ['--floor', '64m', '--only', 'read-state']);
      expect(r.status).to.equal(0);
      expect(r.stdout).to.match(/^restoring the target of 524288 kB/m);
      // What the suite found after putting it back is the original.
      expect(r.stdout).to.match(/allocation \d+ kB, target 524288 kB/);
      expect(sysfsTarget()).to.equal(524288);
    });

    it('a record left by an xl run in dom0 is put back through xl, whichever interface runs first', () => {
      const env = host.env();
      const stateDir = env.XENTEST_STATE_DIR as string;
      expect(spawnSync('xl', ['mem-set', '0', '900'], { env }).status).to.equal(0);
      writeFileSync(join(stateDir, 'balloon-restore.json'), JSON.stringify({ interface: 'xl', domain: '0', targetKb: 1048576, pid: 1, startedAt: 'then' }));
      const r = balloon(env, ['--floor', '512m', '--only', 'read-state']);
      expect(r.status, r.stdout + r.stderr).to.equal(0);
      expect(r.stdout).to.match(/^restoring the target of 1048576 kB that an interrupted run \(pid 1, then\) left$/m);
      expect(spawnSync('xenstore-read', ['/local/domain/0/memory/target'], { env, encoding: 'utf8' }).stdout).to.equal('1048576\n');
      expect(existsSync(join(stateDir, 'balloon-restore.json'))).to.equal(false);
    });

    it('SIGTERM: it puts the target back itself and exits 143', async () => {
      const t = await interrupt(sysfsEnv, 'SIGTERM');
      expect(t.code).to.equal(143);
      expect(t.stdout).to.include('SIGTERM: putting the target back to 524288 kB');
      expect(sysfsTarget()).to.equal(524288);
      expect(existsSync(record())).to.equal(false);
    });
  });
});
