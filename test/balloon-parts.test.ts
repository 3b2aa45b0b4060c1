/**
 * The balloon suite's parts that need no driver: reading each interface's
 * text, sizes as xl takes them, one write(2) of exact bytes, the restore
 * record, and the command line's errors.
 */
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseProcBalloon } from '../agent/balloon/proc.js';
import { parseXlListLine } from '../agent/balloon/xl.js';
import { parseSizeKb } from '../agent/balloon/cli.js';
import { writeOnce } from '../agent/balloon/write-once.js';
import { clearRestore, readRestore, restoreFile, saveRestore } from '../agent/balloon/restore.js';
import { BalloonFormatError } from '../agent/balloon/interface.js';
import { UsageError } from '../agent/cli/usage.js';
import { hasStackTrace, runXentest } from './support/cli.js';

// The 2.6.18-xen driver's read, as its sprintf writes it.
const PROC_2618 =
  'Current allocation:   131072 kB\nRequested target:     131072 kB\nLow-mem balloon:          0 kB\nHigh-mem balloon:         0 kB\nDriver pages:             0 kB\nXen hard limit:          ??? kB\n';
// The paper's era (Xen 2.0 / 3.0 XenLinux): no "Driver pages" line, headroom after the hard limit.
const PROC_OLD =
  'Current allocation:   262144 kB\nRequested target:     524288 kB\nLow-mem balloon:          0 kB\nHigh-mem balloon:         0 kB\nXen hard limit:       262144 kB (inc.        0 kB driver headroom)\n';

describe('balloon suite: parts', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'xentest-balloon-parts-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads /proc/xen/balloon as 2.6.18-xen and the older drivers write it', () => {
    expect(parseProcBalloon(PROC_2618, 'f')).to.deep.equal({ currentKb: 131072, targetKb: 131072, lowKb: 0, highKb: 0, driverKb: 0, hardLimitKb: null });
    expect(parseProcBalloon(PROC_OLD, 'f')).to.deep.equal({ currentKb: 262144, targetKb: 524288, lowKb: 0, highKb: 0, driverKb: null, hardLimitKb: 262144 });
  });

  it('says which line is missing from a /proc/xen/balloon it cannot read', () => {
    expect(() => parseProcBalloon(PROC_2618.replace(/^Requested.*\n/m, ''), '/proc/xen/balloon')).to.throw(BalloonFormatError, /^\/proc\/xen\/balloon: no "Requested target: N kB" line/);
    expect(() => parseProcBalloon(PROC_2618.replace(/^Xen hard.*\n/m, ''), '/proc/xen/balloon')).to.throw(BalloonFormatError, /no "Xen hard limit:" line/);
  });

  it("takes sizes as xl does: a bare number is MiB, k, m and g suffixes", () => {
    expect(parseSizeKb('128', '--floor')).to.equal(131072);
    expect(parseSizeKb('128m', '--floor')).to.equal(131072);
    expect(parseSizeKb('4k', '--floor')).to.equal(4);
    expect(parseSizeKb('0', '--floor')).to.equal(0);
    expect(parseSizeKb('2G', '--floor')).to.equal(2 * 1024 * 1024);
    expect(() => parseSizeKb('12x', '--floor')).to.throw(UsageError, '--floor 12x is not a size');
  });

  it("finds the domain's id and memory in xl list's output", () => {
    const out = 'Name                                        ID   Mem VCPUs\tState\tTime(s)\nvm 1 with spaces                             3   255     1     -b----       1.2\n';
    expect(parseXlListLine(out, 'vm1')).to.deep.equal({ name: 'vm 1 with spaces', id: 3, memMiB: 255 });
    expect(() => parseXlListLine('Name ID Mem\n', 'vm1')).to.throw(BalloonFormatError, /^xl list vm1: no domain line/);
  });

  it('writes exactly the bytes given in one write, and says where a write failed', () => {
    const f = join(dir, 'target_kb');
    writeFileSync(f, 'old\n');
    expect(writeOnce(f, Buffer.from('5'))).to.deep.equal({ ok: true, written: 1 });
    // O_WRONLY without O_TRUNC, as a shell's ">" would not do: a sysfs file has no old content to keep.
    expect(readFileSync(f, 'utf8')).to.equal('5ld\n');
    expect(writeOnce(join(dir, 'missing'), Buffer.from('1\n'))).to.deep.equal({ ok: false, code: 'ENOENT', at: 'open', message: '' });
    mkdirSync(join(dir, 'd'));
    expect(writeOnce(join(dir, 'd'), Buffer.from('1\n'))).to.include({ ok: false, code: 'EISDIR', at: 'open' });
  });

  it('keeps the restore record until cleared, and refuses one it did not write', () => {
    expect(readRestore(dir)).to.equal(null);
    saveRestore(dir, { interface: 'sysfs', domain: null, targetKb: 262144, pid: 1, startedAt: 'now' });
    expect(readRestore(dir)).to.include({ interface: 'sysfs', targetKb: 262144 });
    clearRestore(dir);
    expect(readRestore(dir)).to.equal(null);
    writeFileSync(restoreFile(dir), 'garbage');
    expect(() => readRestore(dir)).to.throw(/is not a restore record; look at it and remove it/);
  });

  it('lists every scenario with what each interface must do', () => {
    const r = runXentest(['balloon', '--list']);
    expect(r.status).to.equal(0);
    for (const s of ['read-state', 'raise-target', 'lower-target', 'allocate-then-lower', 'above-host-ram', 'too-low', 'non-root-write', 'one-byte-write', 'long-write', 'rapid-targets']) {
      expect(r.stdout).to.match(new RegExp(`^${s}: `, 'm'));
    }
    expect(r.stdout).to.include('  proc: EBADMSG at write');
    expect(r.stdout.match(/^ {2}(proc|sysfs|xl): /gm)).to.have.length(30);
  });

  it('says clearly when there is no balloon here, or an option is wrong (no stack trace)', () => {
    const none = runXentest(['balloon'], { env: { XENTEST_ROOT: dir, PATH: '/usr/bin:/bin' } });
    expect(none.status).to.equal(69);
    expect(none.stderr).to.match(/^xentest: no balloon interface here: .*xen_memory0 does not exist.*proc\/xen\/balloon does not exist/);
    expect(none.stderr).to.include('hint: ');
    expect(hasStackTrace(none.stderr)).to.equal(false);
    const wrong = runXentest(['balloon', '--interface', 'ioctl'], { env: { XENTEST_ROOT: dir } });
    expect(wrong.status).to.equal(64);
    expect(wrong.stderr).to.include('--interface ioctl is not auto, proc, sysfs or xl');
    const only = runXentest(['balloon', '--only', 'nope'], { env: { XENTEST_ROOT: dir } });
    expect(only.stderr).to.include('--only nope: there is no such scenario');
    const sysfs = runXentest(['balloon', '--interface', 'sysfs'], { env: { XENTEST_ROOT: dir } });
    expect(sysfs.status).to.equal(69);
    expect(sysfs.stderr).to.include(`--interface sysfs: ${join(dir, 'sys/devices/system/xen_memory/xen_memory0')} does not exist`);
  });
});
