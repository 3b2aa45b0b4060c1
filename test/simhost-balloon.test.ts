/**
 * The simulated host's balloon driver (scripts/simhost/balloon.ts and the
 * node --import hook balloon-hook.ts): what a program in a simulated domain
 * gets from the real interface files under its XENTEST_ROOT when it uses
 * node:fs as it would on a real kernel. Every read and write here is done by
 * a real child Node process started with the domain's environment (the
 * NODE_OPTIONS hook included), as the balloon suite's own processes are;
 * identities are switched with setpriv, as the suite does.
 */
import { expect } from 'chai';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostWithBalloonGuests } from './support/balloon-guests.js';
import { SimHost } from '../scripts/simhost/host.js';

const SYSFS = 'sys/devices/system/xen_memory/xen_memory0';
const PROC = 'proc/xen/balloon';
const AS_ROOT = process.geteuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;
const NO_CAP = ['setpriv', '--inh-caps=-sys_admin', '--bounding-set=-sys_admin'];
const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
/** So fast that the allocation is where it goes at once. */
const INSTANT = { XENTEST_SIM_BALLOON_KIB_PER_S: '1000000000' };

/** What the child does, one operation after another, and prints as one JSON array. */
type Op =
  | { op: 'write'; file: string; text?: string; hex?: string; flags?: 'w' | 'O_WRONLY' | 'r+'; api?: 'named' | 'default' }
  | { op: 'read'; file: string }
  | { op: 'sleep'; ms: number };
type Result = { written?: number; at?: 'open' | 'write'; code?: string; errno?: number; syscall?: string; message?: string; text?: string };

const CHILD = `
import { closeSync, constants, openSync, readFileSync, writeSync } from 'node:fs';
import fs from 'node:fs';
const root = process.env.XENTEST_ROOT;
const at = (f) => (f.startsWith('/') ? f : root + '/' + f);
const err = (where, e) => ({ at: where, code: e.code, errno: e.errno, syscall: e.syscall, message: e.message });
const out = [];
for (const o of JSON.parse(process.argv[2])) {
  if (o.op === 'sleep') { await new Promise((r) => setTimeout(r, o.ms)); out.push({}); continue; }
  if (o.op === 'read') { try { out.push({ text: readFileSync(at(o.file), 'utf8') }); } catch (e) { out.push(err('read', e)); } continue; }
  const bytes = o.hex !== undefined ? Buffer.from(o.hex, 'hex') : Buffer.from(o.text, 'latin1');
  const flags = o.flags === 'O_WRONLY' || o.flags === undefined ? constants.O_WRONLY : o.flags;
  let fd;
  try { fd = openSync(at(o.file), flags); } catch (e) { out.push(err('open', e)); continue; }
  try { out.push({ written: (o.api === 'default' ? fs.writeSync : writeSync)(fd, bytes, 0, bytes.length) }); }
  catch (e) { out.push(err('write', e)); }
  finally { closeSync(fd); }
}
process.stdout.write(JSON.stringify(out) + '\\n');
`;

let work: string;
let host: SimHost;
let child: string;

/** Run ops in a child Node process with this environment, as this identity (a setpriv prefix). */
function run(env: NodeJS.ProcessEnv, ops: Op[], as: string[] = []): Result[] {
  const argv = [...as, process.execPath, child, JSON.stringify(ops)];
  const r = spawnSync(argv[0] as string, argv.slice(1), { env, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`the child failed (${r.status ?? r.signal}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Result[];
}

function one(env: NodeJS.ProcessEnv, op: Op, as: string[] = []): Result {
  return run(env, [op], as)[0] as Result;
}

function sh(env: NodeJS.ProcessEnv, command: string): SpawnSyncReturns<string> {
  return spawnSync('/bin/sh', ['-c', command], { env, encoding: 'utf8', timeout: 30_000 });
}

function num(r: Result): number {
  expect(r.text, JSON.stringify(r)).to.match(/^\d+\n$/);
  return Number(r.text);
}

function procField(text: string | undefined, label: string): number {
  const m = new RegExp(`^${label}:\\s+(\\d+) kB$`, 'm').exec(text ?? '');
  if (!m) throw new Error(`no ${label} in ${JSON.stringify(text)}`);
  return Number(m[1]);
}

const pad8 = (n: number) => String(n).padStart(8);

/** xl list's Mem column for a domain. */
function xlMem(name: string): number {
  const r = sh(host.env(), `xl list ${name}`);
  expect(r.status, r.stderr).to.equal(0);
  const m = new RegExp(`^${name}\\s+\\d+\\s+(\\d+)\\s`, 'm').exec(r.stdout);
  if (!m) throw new Error(`xl list ${name}: ${r.stdout}`);
  return Number(m[1]);
}

function domid(name: string): number {
  const d = host.domain(name);
  if (!d) throw new Error(`no domain ${name}`);
  return d.id;
}

describe('simulated host: the balloon driver behind the real interface files', function () {
  this.timeout(120_000);
  let sysfsEnv: NodeJS.ProcessEnv;
  let procEnv: NodeJS.ProcessEnv;

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'xentest-simballoon-'));
    child = join(work, 'child.mjs');
    writeFileSync(child, CHILD);
    host = hostWithBalloonGuests(work, { sysfs: 'vm-a', proc: 'vm-b' });
    sysfsEnv = host.guestEnv('vm-a');
    procEnv = host.guestEnv('vm-b');
  });
  after(async () => {
    await host.powerOff();
    rmSync(work, { recursive: true, force: true });
  });
  // Each test starts from the guests' own 512 MiB, reached at once.
  afterEach(() => {
    for (const vm of ['vm-a', 'vm-b']) {
      const r = spawnSync('xl', ['mem-set', vm, '512'], { env: { ...host.env(), ...INSTANT }, encoding: 'utf8' });
      expect(r.status, r.stderr).to.equal(0);
    }
  });

  const a = (rel: string) => join(host.domainRoot('vm-a'), rel);
  const b = (rel: string) => join(host.domainRoot('vm-b'), rel);

  describe('which interface a domain has, and its files', () => {
    it('follows the kernel: vmlinuz-2.6.N-xen has /proc/xen/balloon, any other kernel sysfs; dom0 what the machine says', () => {
      expect(existsSync(a(`${SYSFS}/target_kb`))).to.equal(true);
      expect(existsSync(a(PROC))).to.equal(false);
      expect(existsSync(b(PROC))).to.equal(true);
      expect(existsSync(b('sys/devices/system/xen_memory'))).to.equal(false);
      expect(existsSync(join(host.root, SYSFS, 'target_kb'))).to.equal(true);
      for (const [kind, has, lacks] of [
        ['proc', PROC, SYSFS],
        ['none', null, SYSFS],
      ] as const) {
        const other = SimHost.create(join(work, `dom0-${kind}`), { runnerUnit: null, dom0Balloon: kind });
        if (has) expect(existsSync(join(other.root, has))).to.equal(true);
        expect(existsSync(join(other.root, lacks))).to.equal(false);
        if (kind === 'none') expect(existsSync(join(other.root, PROC))).to.equal(false);
        const first = one(other.env(), { op: 'read', file: 'proc/meminfo' });
        expect(first.text).to.match(/^MemTotal: {8}1048576 kB\nMemFree: {8}[ \d]{8} kB\nMemAvailable: {3}[ \d]{8} kB\n$/);
      }
    });

    it('real files with the modes sysfs and proc give them, holding what a read gives', () => {
      const mode = (f: string) => statSync(f).mode & 0o777;
      for (const f of ['target_kb', 'target', 'max_schedule_delay', 'max_retry_count']) expect(mode(a(`${SYSFS}/${f}`)), f).to.equal(0o644);
      for (const f of ['info/current_kb', 'info/low_kb', 'info/high_kb', 'schedule_delay', 'retry_count']) expect(mode(a(`${SYSFS}/${f}`)), f).to.equal(0o444);
      expect(mode(b(PROC))).to.equal(0o644);
      // Plain reads without the hook (cat is no Node process) see the content a read gave at the last change.
      expect(sh(sysfsEnv, `cat ${a(`${SYSFS}/target_kb`)} ${a(`${SYSFS}/target`)} ${a(`${SYSFS}/info/high_kb`)}`).stdout).to.equal('524288\n536870912\n0\n');
      const values = run(sysfsEnv, ['schedule_delay', 'retry_count', 'max_schedule_delay', 'max_retry_count'].map((f) => ({ op: 'read', file: `${SYSFS}/${f}` }) as Op));
      expect(values.map((r) => r.text)).to.deep.equal(['1\n', '1\n', '32\n', '0\n']);
      const meminfo = one(sysfsEnv, { op: 'read', file: 'proc/meminfo' }).text ?? '';
      expect(meminfo).to.match(/^MemTotal: {9}524288 kB\nMemFree: {8}[ \d]{8} kB\nMemAvailable: {3}[ \d]{8} kB\n$/);
      // MemAvailable is the allocation less what the domain holds: 32 MiB of kernel and its processes (this child among them).
      expect(procField(meminfo, 'MemAvailable')).to.be.within(524288 - 32768 - 400_000, 524288 - 32768 - 10_000);
    });
  });

  describe('sysfs (drivers/xen/xen-balloon.c)', () => {
    it('target_kb: the new target reads back at once; info/current_kb follows with a lag, then reaches it', () => {
      const env = { ...sysfsEnv, XENTEST_SIM_BALLOON_KIB_PER_S: '65536' };
      const r = run(env, [
        { op: 'write', file: `${SYSFS}/target_kb`, text: '458752\n' },
        { op: 'read', file: `${SYSFS}/target_kb` },
        { op: 'read', file: `${SYSFS}/info/current_kb` },
        { op: 'read', file: `${SYSFS}/target` },
        { op: 'sleep', ms: 1400 },
        { op: 'read', file: `${SYSFS}/info/current_kb` },
        { op: 'read', file: `${SYSFS}/info/low_kb` },
      ]);
      expect(r[0]).to.deep.equal({ written: 7 });
      expect(num(r[1]!)).to.equal(458752);
      // 64 MiB at 64 MiB/s: a second on the way.
      expect(num(r[2]!)).to.be.above(458752 + 16384);
      expect(num(r[3]!)).to.equal(458752 * 1024);
      expect(num(r[5]!)).to.equal(458752);
      expect(num(r[6]!)).to.equal(524288 - 458752);
    });

    it('target takes bytes with a memparse suffix; target_kb is simple_strtoull base 0, times 1024, in whole pages', () => {
      const r = run({ ...sysfsEnv, ...INSTANT }, [
        { op: 'write', file: `${SYSFS}/target`, text: '256M\n' },
        { op: 'read', file: `${SYSFS}/target_kb` },
        { op: 'read', file: `${SYSFS}/target` },
        { op: 'write', file: `${SYSFS}/target_kb`, text: '0x10000' },
        { op: 'read', file: `${SYSFS}/target_kb` },
        { op: 'write', file: `${SYSFS}/target_kb`, text: '0777' },
        { op: 'read', file: `${SYSFS}/target_kb` },
        { op: 'write', file: `${SYSFS}/target`, text: '1t' },
        { op: 'read', file: `${SYSFS}/target_kb` },
        // No other check: garbage is a target of 0, and the whole count is taken.
        { op: 'write', file: `${SYSFS}/target_kb`, text: ' 5' },
        { op: 'read', file: `${SYSFS}/target_kb` },
        { op: 'write', file: `${SYSFS}/target_kb`, text: '300000kB junk' },
        { op: 'read', file: `${SYSFS}/target_kb` },
      ]);
      expect(r[0]).to.deep.equal({ written: 5 });
      expect(num(r[1]!)).to.equal(262144);
      expect(num(r[2]!)).to.equal(268435456);
      expect(r[3]).to.deep.equal({ written: 7 });
      expect(num(r[4]!)).to.equal(65536);
      // 511 KiB is 127 pages and a bit.
      expect(num(r[6]!)).to.equal(508);
      expect(num(r[8]!)).to.equal(1024 ** 3);
      expect(r[9]).to.deep.equal({ written: 2 });
      expect(num(r[10]!)).to.equal(0);
      expect(num(r[12]!)).to.equal(300000);
    });

    it('kernfs: a write of 0 bytes stores nothing, one longer than a page is cut to 4096 bytes; the open truncates nothing', () => {
      const r = run(sysfsEnv, [
        { op: 'write', file: `${SYSFS}/target_kb`, text: '' },
        { op: 'read', file: `${SYSFS}/target_kb` },
        { op: 'write', file: `${SYSFS}/target_kb`, text: '500000' + ' '.repeat(5000) },
        { op: 'read', file: `${SYSFS}/target_kb` },
        { op: 'write', file: `${SYSFS}/target_kb`, text: '524288\n', flags: 'w', api: 'default' },
      ]);
      expect(r[0]).to.deep.equal({ written: 0 });
      expect(num(r[1]!)).to.equal(524288);
      expect(r[2]).to.deep.equal({ written: 4096 });
      expect(num(r[3]!)).to.equal(500000);
      expect(r[4]).to.deep.equal({ written: 7 });
      expect(readFileSync(a(`${SYSFS}/target_kb`), 'utf8')).to.equal('524288\n');
    });

    it('read-only files cannot be opened for writing (EACCES at open); max_retry_count is kstrtoul', () => {
      const r = run(sysfsEnv, [
        { op: 'write', file: `${SYSFS}/info/current_kb`, text: '1\n' },
        { op: 'write', file: `${SYSFS}/schedule_delay`, text: '1\n', flags: 'w' },
        { op: 'write', file: `${SYSFS}/max_retry_count`, text: '3\n' },
        { op: 'read', file: `${SYSFS}/max_retry_count` },
        { op: 'write', file: `${SYSFS}/max_retry_count`, text: 'many' },
        { op: 'write', file: `${SYSFS}/max_retry_count`, text: '0' },
      ]);
      expect(r[0]).to.deep.include({ at: 'open', code: 'EACCES', syscall: 'open', message: `EACCES: permission denied, open '${a(`${SYSFS}/info/current_kb`)}'` });
      expect(r[1]).to.deep.include({ at: 'open', code: 'EACCES' });
      expect(readFileSync(a(`${SYSFS}/schedule_delay`), 'utf8')).to.equal('1\n');
      expect(r[2]).to.deep.equal({ written: 2 });
      expect(r[3]!.text).to.equal('3\n');
      expect(r[4]).to.deep.include({ at: 'write', code: 'EINVAL' });
      expect(r[5]).to.deep.equal({ written: 1 });
    });
  });

  describe('/proc/xen/balloon (2.6.18-xen drivers/xen/balloon/balloon.c)', () => {
    it('a runt (1 byte or none) is EBADMSG, more than 64 bytes EFBIG, 64 bytes are taken; real Node fs errors', () => {
      const r = run({ ...procEnv, ...INSTANT }, [
        { op: 'write', file: PROC, text: '\n' },
        { op: 'write', file: PROC, text: '' },
        { op: 'write', file: PROC, text: '400M'.padEnd(64, ' ') + 'X' },
        { op: 'write', file: PROC, text: '400M'.padEnd(63, ' ') + '\n' },
        { op: 'read', file: PROC },
      ]);
      expect(r[0]).to.deep.equal({ at: 'write', code: 'EBADMSG', errno: -74, syscall: 'write', message: 'EBADMSG: bad message, write' });
      expect(r[1]).to.deep.include({ at: 'write', code: 'EBADMSG' });
      expect(r[2]).to.deep.equal({ at: 'write', code: 'EFBIG', errno: -27, syscall: 'write', message: 'EFBIG: file too large, write' });
      expect(r[3]).to.deep.equal({ written: 64 });
      expect(procField(r[4]!.text, 'Requested target')).to.equal(409600);
    });

    it('reads as balloon_read sprintf()s it, byte for byte', () => {
      const r = run({ ...procEnv, ...INSTANT }, [
        { op: 'write', file: PROC, text: '471859200' },
        { op: 'read', file: PROC },
      ]);
      const cur = procField(r[1]!.text, 'Current allocation');
      expect(cur).to.equal(460800);
      expect(r[1]!.text).to.equal(
        `Current allocation: ${pad8(cur)} kB\nRequested target:   ${pad8(460800)} kB\nLow-mem balloon:    ${pad8(524288 - cur)} kB\n` +
          'High-mem balloon:          0 kB\nDriver pages:              0 kB\nXen hard limit:          ??? kB\n',
      );
    });

    it('memparse: K, M and G suffixes in either case, base 0; only the first 63 bytes count; the 2.6.18 memparse has no T', () => {
      const target = (text: string) => procField(run({ ...procEnv, ...INSTANT }, [{ op: 'write', file: PROC, text }, { op: 'read', file: PROC }])[1]!.text, 'Requested target');
      expect(target('300m\n')).to.equal(307200);
      expect(target('0x20000K')).to.equal(131072);
      expect(target('1G')).to.equal(1048576);
      expect(target('0600M')).to.equal(393216);
      // memstring[63] = 0: in 64 bytes the suffix at the 64th is cut off, at the 63rd it counts.
      expect(target('0x' + '0'.repeat(57) + '4000M')).to.equal(16);
      expect(target('0x' + '0'.repeat(56) + '4000M')).to.equal(16384 * 1024);
      expect(target('1T')).to.equal(0);
    });

    it('a target above the static maximum: the allocation stops there and "Xen hard limit" shows it; a new write clears it', () => {
      const r = run({ ...procEnv, ...INSTANT }, [
        { op: 'write', file: PROC, text: '2G\n' },
        { op: 'read', file: PROC },
        { op: 'write', file: PROC, text: '500M\n' },
        { op: 'read', file: PROC },
      ]);
      expect(procField(r[1]!.text, 'Requested target')).to.equal(2097152);
      expect(procField(r[1]!.text, 'Current allocation')).to.equal(524288);
      expect(r[1]!.text).to.match(/\nXen hard limit: {7}524288 kB\n$/);
      expect(procField(r[3]!.text, 'Current allocation')).to.equal(512000);
      expect(r[3]!.text).to.match(/\nXen hard limit: {10}\?\?\? kB\n$/);
    });
  });

  describe('sysfs above what Xen gives', () => {
    it('Xen gives a guest no more than the toolstack allowed (its target + 1 MiB), then the static maximum (maxmem), then the host\'s free memory; xl info shows what is left', () => {
      const r = run({ ...sysfsEnv, ...INSTANT }, [
        { op: 'write', file: `${SYSFS}/target_kb`, text: '10485760\n' },
        { op: 'read', file: `${SYSFS}/target_kb` },
        { op: 'read', file: `${SYSFS}/info/current_kb` },
      ]);
      expect(num(r[1]!)).to.equal(10485760);
      // max_pages is what xl create set: memory (512 MiB) + LIBXL_MAXMEM_CONSTANT, as on a real Xen 4.17.5.
      expect(num(r[2]!)).to.equal(524288 + 1024);
      // xl mem-set from dom0 raises max_pages with the target: the allocation grows to it, within maxmem.
      const up = sh({ ...host.env(), ...INSTANT }, 'xl mem-set vm-a 640');
      expect(up.status, up.stdout + up.stderr).to.equal(0);
      expect(num(one({ ...sysfsEnv, ...INSTANT }, { op: 'read', file: `${SYSFS}/info/current_kb` }))).to.equal(655360);
      expect(sh({ ...host.env(), ...INSTANT }, 'xl mem-set vm-a 512').status).to.equal(0);
      // A guest allowed more than the host has gets what is free, and no more.
      writeFileSync(join(work, 'vm-big.cfg'), 'name = "vm-big"\nmemory = 256\nmaxmem = 65536\nkernel = "/boot/vmlinuz-6.1.0-18-amd64"\n');
      expect(spawnSync('xl', ['create', join(work, 'vm-big.cfg')], { env: host.env() }).status).to.equal(0);
      try {
        const own = run({ ...host.guestEnv('vm-big'), ...INSTANT }, [
          { op: 'write', file: `${SYSFS}/target`, text: '64G' },
          { op: 'read', file: `${SYSFS}/info/current_kb` },
        ]);
        expect(num(own[1]!)).to.equal((256 + 1) * 1024);
        const free = Number(/^free_memory\s+: (\d+)$/m.exec(sh(host.env(), 'xl info').stdout)?.[1]);
        expect(sh({ ...host.env(), ...INSTANT }, 'xl mem-set vm-big 65536').status).to.equal(0);
        const big = one({ ...host.guestEnv('vm-big'), ...INSTANT }, { op: 'read', file: `${SYSFS}/info/current_kb` });
        expect(num(big)).to.equal((256 + 1 + free) * 1024);
        expect(sh(host.env(), 'xl info').stdout).to.match(/^free_memory {12}: 0$/m);
      } finally {
        expect(spawnSync('xl', ['destroy', 'vm-big'], { env: host.env() }).status).to.equal(0);
      }
    });
  });

  describe('privilege', () => {
    it('root without CAP_SYS_ADMIN: EPERM at write (before /proc\'s length checks); the target and the file stay', function () {
      if (!AS_ROOT) this.skip();
      const s = run(sysfsEnv, [{ op: 'write', file: `${SYSFS}/target_kb`, text: '262144\n' }, { op: 'write', file: `${SYSFS}/target`, text: '1G' }], NO_CAP);
      expect(s[0]).to.deep.equal({ at: 'write', code: 'EPERM', errno: -1, syscall: 'write', message: 'EPERM: operation not permitted, write' });
      expect(s[1]).to.deep.include({ at: 'write', code: 'EPERM' });
      const p = run(procEnv, [{ op: 'write', file: PROC, text: '\n' }, { op: 'write', file: PROC, text: 'x'.repeat(65) }, { op: 'write', file: PROC, text: '256M\n' }], NO_CAP);
      expect(p.map((x) => x.code)).to.deep.equal(['EPERM', 'EPERM', 'EPERM']);
      expect(sh(sysfsEnv, `cat ${a(`${SYSFS}/target_kb`)}`).stdout).to.equal('524288\n');
      expect(procField(one(procEnv, { op: 'read', file: PROC }).text, 'Requested target')).to.equal(524288);
    });

    it('user nobody: EACCES at open (the files are 0644 root), and it still reads them', function () {
      if (!AS_ROOT) this.skip();
      const s = run(sysfsEnv, [{ op: 'write', file: `${SYSFS}/target_kb`, text: '262144\n' }, { op: 'read', file: `${SYSFS}/target_kb` }], NOBODY);
      expect(s[0]).to.deep.include({ at: 'open', code: 'EACCES', syscall: 'open' });
      expect(s[1]!.text).to.equal('524288\n');
      const p = run(procEnv, [{ op: 'write', file: PROC, text: '\n' }, { op: 'read', file: PROC }], NOBODY);
      expect(p[0]).to.deep.include({ at: 'open', code: 'EACCES' });
      expect(procField(p[1]!.text, 'Requested target')).to.equal(524288);
    });

    it('on a host run by an ordinary user, that user (who owns the files) stands in for root', function () {
      if (!AS_ROOT) this.skip();
      // The guest's whole filesystem owned by user nobody, as a host an ordinary user made would have it.
      const root = host.domainRoot('vm-a');
      expect(spawnSync('chown', ['-R', '65534:65534', root]).status).to.equal(0);
      try {
        const r = run({ ...sysfsEnv, ...INSTANT }, [{ op: 'write', file: `${SYSFS}/target_kb`, text: '458752\n' }, { op: 'read', file: `${SYSFS}/target_kb` }], NOBODY);
        expect(r[0]).to.deep.equal({ written: 7 });
        expect(r[1]!.text).to.equal('458752\n');
        // Its read-only files follow on disk too, and stay read-only.
        expect(sh(sysfsEnv, `cat ${a(`${SYSFS}/info/current_kb`)}`).stdout).to.equal('458752\n');
        expect(statSync(a(`${SYSFS}/info/current_kb`)).mode & 0o777).to.equal(0o444);
        // Another user is still refused by the mode, and root without CAP_SYS_ADMIN by the driver.
        expect(one(sysfsEnv, { op: 'write', file: `${SYSFS}/target_kb`, text: '1\n' }, ['setpriv', '--reuid=65533', '--regid=65533', '--clear-groups'])).to.deep.include({ at: 'open', code: 'EACCES' });
        expect(one(sysfsEnv, { op: 'write', file: `${SYSFS}/target_kb`, text: '1\n' }, NO_CAP)).to.deep.include({ at: 'write', code: 'EPERM' });
      } finally {
        expect(spawnSync('chown', ['-R', '0:0', root]).status).to.equal(0);
      }
      expect(statSync(a(`${SYSFS}/target_kb`)).uid).to.equal(0);
    });
  });

  describe('xl mem-set and xenstore-read from dom0, xenstore-read in a guest', () => {
    it('xl mem-set sets the guest driver\'s target at once; xl list\'s Mem follows with the lag', () => {
      // 64 MiB at 32 MiB/s: two seconds on the way.
      const env = { ...host.env(), XENTEST_SIM_BALLOON_KIB_PER_S: '32768' };
      const started = Date.now();
      expect(sh(env, 'xl mem-set vm-a 448').status).to.equal(0);
      expect(xlMem('vm-a')).to.be.above(470);
      expect(host.domain('vm-a')).to.include({ targetMiB: 448 });
      expect(num(one(sysfsEnv, { op: 'read', file: `${SYSFS}/target_kb` }))).to.equal(458752);
      expect(sh(env, `xenstore-read /local/domain/${domid('vm-a')}/memory/target`).stdout).to.equal('458752\n');
      while (xlMem('vm-a') !== 448 && Date.now() - started < 10_000) spawnSync('sleep', ['0.1']);
      expect(xlMem('vm-a')).to.equal(448);
      expect(Date.now() - started).to.be.above(1800);
      expect(num(one(sysfsEnv, { op: 'read', file: `${SYSFS}/info/current_kb` }))).to.equal(458752);
      // The /proc guest's driver follows xenstore too.
      expect(sh({ ...env, ...INSTANT }, 'xl mem-set vm-b 300m').status).to.equal(0);
      expect(procField(one(procEnv, { op: 'read', file: PROC }).text, 'Requested target')).to.equal(307200);
      expect(xlMem('vm-b')).to.equal(300);
      // libxl's checks stay: above static-max is refused and changes nothing.
      const refused = sh(env, 'xl mem-set vm-b 1g');
      expect(refused.status).to.equal(1);
      expect(refused.stderr).to.contain('memory_dynamic_max must be less than or equal to memory_static_max');
      expect(procField(one(procEnv, { op: 'read', file: PROC }).text, 'Requested target')).to.equal(307200);
    });

    it('xenstore-read answers memory/target and static-max (KiB); a key it lacks is "couldn\'t read path", exit 1', () => {
      const env = host.env();
      const id = domid('vm-a');
      expect(sh(env, `xenstore-read /local/domain/${id}/memory/target /local/domain/${id}/memory/static-max`).stdout).to.equal('524288\n655360\n');
      expect(sh(env, `xenstore-read -p /local/domain/${id}/domid`).stdout).to.equal(`/local/domain/${id}/domid: ${id}\n`);
      const missing = sh(env, 'xenstore-read /local/domain/99/memory/target');
      expect(missing.status).to.equal(1);
      expect(missing.stderr).to.equal("xenstore-read: couldn't read path /local/domain/99/memory/target\n");
      // dom0's memory keys appear with its first xl mem-set (libxl__fill_dom0_memory_info).
      expect(sh(env, 'xenstore-read memory/target').status).to.equal(1);
      expect(sh({ ...env, ...INSTANT }, 'xl mem-set 0 1024').status).to.equal(0);
      expect(sh(env, 'xenstore-read memory/target /local/domain/0/memory/static-max').stdout).to.equal('1048576\n1048576\n');
      // In a guest, relative keys are its own, and dom0's are not its to read.
      const g = sh(sysfsEnv, 'xenstore-read domid memory/target memory/static-max');
      expect(g.status, g.stderr).to.equal(0);
      expect(g.stdout).to.equal(`${id}\n524288\n655360\n`);
      const other = sh(sysfsEnv, 'xenstore-read /local/domain/0/memory/target');
      expect(other.status).to.equal(1);
      expect(other.stderr).to.equal("xenstore-read: couldn't read path /local/domain/0/memory/target\n");
      expect(sh(sysfsEnv, 'command -v xl').status).to.not.equal(0);
    });
  });

  describe('planted bugs (XENTEST_SIM_BALLOON_BUG in the writing process)', () => {
    it('target-not-applied: the write succeeds, the target stays', () => {
      const bug = { XENTEST_SIM_BALLOON_BUG: 'target-not-applied' };
      const s = run({ ...sysfsEnv, ...bug }, [{ op: 'write', file: `${SYSFS}/target_kb`, text: '262144\n' }, { op: 'read', file: `${SYSFS}/target_kb` }]);
      expect(s[0]).to.deep.equal({ written: 7 });
      expect(num(s[1]!)).to.equal(524288);
      const p = run({ ...procEnv, ...bug }, [{ op: 'write', file: PROC, text: '256M\n' }, { op: 'read', file: PROC }]);
      expect(p[0]).to.deep.equal({ written: 5 });
      expect(procField(p[1]!.text, 'Requested target')).to.equal(524288);
      // Without it, the same write is applied.
      expect(num(run(sysfsEnv, [{ op: 'write', file: `${SYSFS}/target_kb`, text: '262144\n' }, { op: 'read', file: `${SYSFS}/target_kb` }])[1]!)).to.equal(262144);
    });

    it('runt-einval: a 1-byte /proc write is EINVAL instead of EBADMSG', () => {
      const r = one({ ...procEnv, XENTEST_SIM_BALLOON_BUG: 'runt-einval' }, { op: 'write', file: PROC, text: '\n' });
      expect(r).to.deep.equal({ at: 'write', code: 'EINVAL', errno: -22, syscall: 'write', message: 'EINVAL: invalid argument, write' });
      expect(one(procEnv, { op: 'write', file: PROC, text: '\n' })).to.deep.include({ code: 'EBADMSG' });
    });

    it('current-stuck: the allocation never moves, whoever looks (xl list in dom0 too)', () => {
      const r = run({ ...sysfsEnv, ...INSTANT, XENTEST_SIM_BALLOON_BUG: 'current-stuck' }, [
        { op: 'write', file: `${SYSFS}/target_kb`, text: '262144\n' },
        { op: 'sleep', ms: 300 },
        { op: 'read', file: `${SYSFS}/target_kb` },
        { op: 'read', file: `${SYSFS}/info/current_kb` },
      ]);
      expect(num(r[2]!)).to.equal(262144);
      expect(num(r[3]!)).to.equal(524288);
      expect(num(one({ ...sysfsEnv, ...INSTANT }, { op: 'read', file: `${SYSFS}/info/current_kb` }))).to.equal(524288);
      expect(xlMem('vm-a')).to.equal(512);
    });
  });

  describe('everything else goes to the real fs', () => {
    it('a plain file under the root, or a look-alike name, is written and read as written', () => {
      const r = run(sysfsEnv, [
        { op: 'write', file: 'tmp-plain.txt', text: 'x', flags: 'w' },
        { op: 'read', file: 'tmp-plain.txt' },
        { op: 'write', file: `${SYSFS}/target_kb.bak`, text: '\n', flags: 'w' },
        { op: 'write', file: 'proc/xen/capabilities', text: '\n', flags: 'w' },
        { op: 'write', file: join(work, 'outside.txt'), text: '7', flags: 'w' },
      ]);
      expect(r[0]).to.deep.equal({ written: 1 });
      expect(r[1]!.text).to.equal('x');
      expect(r[2]).to.deep.equal({ written: 1 });
      expect(r[3]).to.deep.equal({ written: 1 });
      expect(r[4]).to.deep.equal({ written: 1 });
      expect(readFileSync(a('tmp-plain.txt'), 'utf8')).to.equal('x');
      expect(readFileSync(a(`${SYSFS}/target_kb.bak`), 'utf8')).to.equal('\n');
      expect(readFileSync(join(work, 'outside.txt'), 'utf8')).to.equal('7');
      // Another domain's interface file is a plain file to this one's hook: /proc/xen/balloon as vm-a sees vm-b's root.
      const cross = one(sysfsEnv, { op: 'write', file: b('no-such-dir/x'), text: '\n', flags: 'w' });
      expect(cross).to.deep.include({ at: 'open', code: 'ENOENT' });
      rmSync(a(`${SYSFS}/target_kb.bak`));
    });
  });
});

describe('simulated host: the driver state lock survives a killed holder', function () {
  this.timeout(30_000);

  it('a holder SIGKILLed inside the lock, or a lock left without its owner, does not hold up the next writer', async () => {
    const { utimesSync, mkdirSync } = await import('node:fs');
    const { spawn } = await import('node:child_process');
    const { withFileLock } = await import('../scripts/simhost/fsutil.js');
    const dir = mkdtempSync(join(tmpdir(), 'xentest-lock-'));
    try {
      const file = join(dir, 'balloon.json');
      const url = new URL('../scripts/simhost/fsutil.js', import.meta.url).href;
      const holder = spawn(process.execPath, ['--input-type=module', '-e', `import { withFileLock } from ${JSON.stringify(url)}; withFileLock(${JSON.stringify(file)}, () => { console.log('in'); for (;;) {} });`], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('exit', r));
      let t = Date.now();
      expect(withFileLock(file, () => 'taken')).to.equal('taken');
      expect(Date.now() - t).to.be.below(2000);
      // An ownerless lock directory (its taker killed between mkdir and writing its pid) is broken after a moment.
      mkdirSync(`${file}.lock`);
      utimesSync(`${file}.lock`, new Date(Date.now() - 5000), new Date(Date.now() - 5000));
      t = Date.now();
      expect(withFileLock(file, () => 'again')).to.equal('again');
      expect(Date.now() - t).to.be.below(2000);
      expect(existsSync(`${file}.lock`)).to.equal(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
