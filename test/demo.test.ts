/**
 * `xentest demo`: the README's first command. A whole night on the simulated
 * host with dom0 and two guests, real make of the tree and of two suites (and xenfc and the balloon suite)
 * served from 127.0.0.1, in under a minute, ending with a per-domain summary.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimHost } from '../scripts/simhost/host.js';
import { hasStackTrace, REPO_ROOT, XENTEST_BIN } from './support/cli.js';

describe('xentest demo', function () {
  this.timeout(180_000);
  let root: string;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'xentest-demo-test-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('runs a night with dom0 and two guests in under a minute and prints what every domain did', () => {
    const dir = join(root, 'demo');
    const started = Date.now();
    const r = spawnSync(process.execPath, [XENTEST_BIN, 'demo', '--dir', dir], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
    const ms = Date.now() - started;
    expect(r.status, r.stdout + r.stderr).to.equal(0);
    expect(ms).to.be.lessThan(60_000);
    const out = r.stdout;

    // The night's steps, as they ended, then the summary.
    for (const step of ['fetch', 'build.xen', 'install.xen', 'bootloader', 'reboot', 'domains.dispatch', 'domains.start', 'domains.wait', 'domains.collect']) {
      expect(out).to.match(new RegExp(`\\] ${step.replace('.', '\\.')}: GOOD`), step);
    }
    expect(out).to.match(/^night \d{8}T\d{6}Z: GOOD$/m);
    for (const d of ['simhost', 'vm1', 'vm2']) expect(out).to.match(new RegExp(`^  ${d}: GOOD, 4 tests: 4 GOOD$`, 'm'));
    // In a guest, DOM0_SETTIME is refused: that is the expected result, and the summary says so.
    const settime = out.split('\n').filter((l) => /^ {4}settime /.test(l));
    expect(settime).to.have.length(3);
    expect(settime[0]).to.match(/GOOD +completed successfully/);
    for (const l of settime.slice(1)) expect(l).to.match(/GOOD +failed as expected in an unprivileged domain: .*DOM0_SETTIME: Operation not permitted/);

    // The results are where it says, one directory per domain, with each test's logs.
    const results = /^results: (.+)$/m.exec(out)?.[1] as string;
    // And the morning report, with the night in the results database.
    expect(out).to.include(`morning report: ${join(results, 'report.html')}`);
    expect(readFileSync(join(results, 'report.html'), 'utf8')).to.include('data-verdict="PASS"');
    expect(readFileSync(join(results, 'report.txt'), 'utf8').split('\n')[0]).to.match(/: PASS: all 12 tests passed$/);
    expect(existsSync(join(results, 'status.log'))).to.equal(true);
    expect(readdirSync(join(results, 'domains')).sort()).to.deep.equal(['simhost', 'vm1', 'vm2']);
    for (const d of ['simhost', 'vm1', 'vm2']) {
      // The suite was built with make in the domain, and its log_dir collected.
      expect(readFileSync(join(results, 'domains', d, 'sieve/debug/build.log'), 'utf8')).to.match(/-o sieve sieve\.c/);
      expect(readFileSync(join(results, 'domains', d, 'sieve/logs/result.txt'), 'utf8')).to.match(/^primes below 1000000: 78498 \(expected 78498\)/);
    }
    // xenfc ran in every domain against the simulated hypervisor: privileged in dom0, not in the guests, no FAIL, its seed first.
    for (const [d, who] of [['simhost', 'as domain 0 (privileged)'], ['vm1', '(unprivileged)'], ['vm2', '(unprivileged)']] as const) {
      const log = readFileSync(join(results, 'domains', d, 'xenfc/debug/run.log'), 'utf8');
      expect(log.split('\n')[1], d).to.match(/^Seed: \d+$/);
      expect(log).to.include(who);
      expect(log).to.match(/^Summary: 200000 calls: \d+ passed, 0 failed, \d+ withheld/m);
      expect(readFileSync(join(results, 'domains', d, 'status.log'), 'utf8')).to.match(/^\t*END GOOD\txenfc\txenfc\t/m);
      expect(readFileSync(join(results, 'domains', d, 'xenfc/keyval'), 'utf8')).to.include('source=installed');
    }
    // The balloon suite ran on each domain's own interface: sysfs and xl mem-set in dom0, sysfs in vm1, /proc/xen/balloon in vm2 (a XenLinux kernel).
    const balloonLog = (d: string) => readFileSync(join(results, 'domains', d, 'balloon/debug/run.log'), 'utf8');
    expect(balloonLog('simhost')).to.match(/^sysfs \(.*xen_memory0\): \d+ GOOD, 0 FAIL, \d+ TEST_NA$/m).and.match(/^xl \(xl mem-set 0\): \d+ GOOD, 0 FAIL, \d+ TEST_NA$/m);
    expect(balloonLog('simhost')).to.match(/^ {2}GOOD: refused \(.*New target 4 for dom0 is below the minimum threshold \/ cannot set domid 0 dynamic max memory to : 4k\)$/m);
    expect(balloonLog('vm1')).to.match(/^sysfs \(.*\/domains\/vm1\/root\/sys\/devices\/system\/xen_memory\/xen_memory0\): \d+ GOOD, 0 FAIL, \d+ TEST_NA$/m);
    expect(balloonLog('vm2')).to.match(/^proc \(.*\/domains\/vm2\/root\/proc\/xen\/balloon\): \d+ GOOD, 0 FAIL, \d+ TEST_NA$/m);
    expect(balloonLog('vm2')).to.match(/^\[8\/10\] one-byte-write \(proc\).*\n.*\n {2}GOOD: EBADMSG$/m);
    for (const d of ['simhost', 'vm1', 'vm2']) expect(readFileSync(join(results, 'domains', d, 'status.log'), 'utf8')).to.match(/^\t*END GOOD\tballoon\tballoon\t/m);
    // Guests ran unprivileged, dom0 privileged, as the keyvals record.
    expect(readFileSync(join(results, 'domains/vm2/settime/keyval'), 'utf8')).to.include('privileged=no').and.include('expected=fail');
    expect(readFileSync(join(results, 'domains/simhost/settime/keyval'), 'utf8')).to.include('privileged=yes');
    // The simulated machine was switched off at the end: no runner or guest is left.
    // The resume unit's output (the journal, on a real machine) ends with the same summary.
    const sim = SimHost.open(join(dir, 'machine'));
    expect(sim.resumeLog(1)).to.match(/^ {2}vm1: GOOD, 4 tests: 4 GOOD$/m).and.include(`results: ${results}`);
    const machine = sim.running();
    expect(machine.kind).to.equal('down');
    expect(machine.domains).to.have.length(0);
  });

  it('refuses a --dir that is not empty, saying what to do, without a stack trace', () => {
    writeFileSync(join(root, 'precious'), 'x');
    const r = spawnSync(process.execPath, [XENTEST_BIN, 'demo', '--dir', root], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000 });
    expect(r.status).to.equal(64);
    expect(r.stderr).to.include(`${root} is not empty`).and.include('--dir');
    expect(hasStackTrace(r.stdout + r.stderr)).to.equal(false);
    expect(readFileSync(join(root, 'precious'), 'utf8')).to.equal('x');
  });
});
