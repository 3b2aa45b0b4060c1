/**
 * The real lab's parts that run without QEMU: the lab's Xen tree (its stamp
 * and its broken build), the night's control file and the small test suite.
 * The lab itself (scripts/lab/lab night) is run on demand, not here.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';

import { builtXenIdentity } from '../agent/xen/identity.js';
import { REPO_ROOT } from './support/cli.js';

const LAB = path.join(REPO_ROOT, 'scripts/lab');
const DATE_RE = /(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-9][0-9] \d\d:\d\d:\d\d UTC \d{4}/g;

function sh(cmd: string, args: string[], cwd: string): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status, out: r.stdout + r.stderr };
}

describe('the lab\'s parts', function () {
  this.timeout(60_000);
  let dir: string;
  let tree: string;
  // A stand-in for Debian's hypervisor: binary bytes around the one compile date a Xen image has.
  const before = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 0xff]), Buffer.alloc(5000, 0x90)]);
  const after = Buffer.concat([Buffer.from('\0Xen version 4.17.5\0'), Buffer.alloc(3000, 0xcc)]);
  const prebuilt = Buffer.concat([before, Buffer.from('Sat Nov 29 13:52:25 UTC 2025'), after]);

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xentest-lab-'));
    tree = path.join(dir, 'lab-xen');
    fs.cpSync(path.join(LAB, 'xen-tree'), tree, { recursive: true });
    fs.mkdirSync(path.join(tree, 'xen'));
    fs.writeFileSync(path.join(tree, 'xen/xen.prebuilt'), prebuilt);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('the Xen tree stamps tonight into the compile date, says so in compile.h as Xen\'s build does, and installs xen-4.17.5.gz', () => {
    const made = sh('make', ['dist'], tree);
    expect(made.status, made.out).to.equal(0);
    const built = fs.readFileSync(path.join(tree, 'xen/xen'));
    expect(built.length).to.equal(prebuilt.length);
    const dates = built.toString('latin1').match(DATE_RE) ?? [];
    expect(dates).to.have.length(1);
    expect(dates[0]).to.not.equal('Sat Nov 29 13:52:25 UTC 2025');
    // Everything but the date is the prebuilt image.
    expect(built.subarray(0, before.length).equals(before)).to.equal(true);
    expect(built.subarray(built.length - after.length).equals(after)).to.equal(true);
    // What the agent reads from the tree is what xl info will say of the image.
    const id = builtXenIdentity(tree);
    expect(id.version).to.equal('4.17.5');
    expect(id.compileDate).to.equal(dates[0]);

    const dest = path.join(dir, 'root');
    const inst = sh('make', ['install', `DESTDIR=${dest}`], tree);
    expect(inst.status, inst.out).to.equal(0);
    expect(gunzipSync(fs.readFileSync(path.join(dest, 'boot/xen-4.17.5.gz'))).equals(built)).to.equal(true);
  });

  it('refuses an image without exactly one compile date, saying what it expected', () => {
    fs.writeFileSync(path.join(tree, 'xen/xen.prebuilt'), Buffer.concat([before, after]));
    const made = sh('make', ['dist'], tree);
    expect(made.status).to.not.equal(0);
    expect(made.out).to.include('has 0 compile dates, not one: is it a Xen hypervisor?');
    expect(fs.existsSync(path.join(tree, 'xen/xen.gz'))).to.equal(false);
  });

  it('BROKEN=1 builds a multiboot image that cannot boot (an empty IDT, then int3), as xen-4.17.5-broken.gz', () => {
    const made = sh('make', ['dist', 'BROKEN=1'], tree);
    expect(made.status, made.out).to.equal(0);
    const img = fs.readFileSync(path.join(tree, 'xen/xen'));
    // Multiboot 1: magic, flags, checksum summing to 0; the a.out kludge's addresses; entry inside the image.
    const [magic, flags, checksum, headerAddr, loadAddr, loadEnd, , entry] = [0, 4, 8, 12, 16, 20, 24, 28].map((o) => img.readUInt32LE(o)) as number[];
    expect(magic).to.equal(0x1badb002);
    expect((magic! + flags! + checksum!) % 2 ** 32).to.equal(0);
    expect(flags! & 0x10000).to.equal(0x10000);
    expect(headerAddr).to.equal(loadAddr);
    expect(loadEnd! - loadAddr!).to.equal(img.length);
    const code = img.subarray(entry! - loadAddr!);
    expect([...code.subarray(0, 9)]).to.deep.equal([0xfa, 0x0f, 0x01, 0x1d, ...[0, 1, 2, 3].map((i) => ((loadAddr! + 40) >> (8 * i)) & 0xff), 0xcc]);
    // The IDT it loads is empty (limit 0).
    expect(img.readUInt16LE(40)).to.equal(0);
    expect(builtXenIdentity(tree).version).to.equal('4.17.5-broken');
    const dest = path.join(dir, 'root');
    // make install, as the night runs it (without BROKEN=1), installs what make dist built.
    expect(sh('make', ['install', `DESTDIR=${dest}`], tree).status).to.equal(0);
    expect(fs.existsSync(path.join(dest, 'boot/xen-4.17.5-broken.gz'))).to.equal(true);
  });

  it('the night\'s control file is valid once the lab fills it in: two domains, the tree pinned', () => {
    const cfg = fs
      .readFileSync(path.join(LAB, 'night.cfg'), 'utf8')
      .replaceAll('@TREE@', `http://10.0.2.100/lab-xen.tar.gz#sha256=${'ab'.repeat(32)}`)
      .replaceAll('@BUILD@', 'make dist BROKEN=1');
    expect(cfg).to.not.include('@');
    fs.writeFileSync(path.join(dir, 'night.cfg'), cfg);
    const r = sh(process.execPath, [path.join(REPO_ROOT, 'bin/xentest.js'), 'check', path.join(dir, 'night.cfg')], dir);
    expect(r.status, r.out).to.equal(0);
    expect(r.out).to.include('sha256 pinned');
    expect(r.out).to.match(/xentest-lab \[XENVM0\].*3 tests \(sieve, xenfc, balloon-dom0\)/);
    expect(r.out).to.match(/lab-domu \[XENVM1\], started from \/etc\/xen\/lab-domu\.cfg: 3 tests \(sieve, xenfc, balloon-domu\)/);
  });

  it('the small test suite checks known answers and fails when one is wrong', () => {
    const suite = path.join(dir, 'sieve');
    fs.cpSync(path.join(LAB, 'sieve'), suite, { recursive: true });
    expect(sh('./configure', [], suite).status).to.equal(0);
    const r = sh('./run-tests', [], suite);
    expect(r.out).to.match(/^PASS primes-below-100000$/m).and.match(/^PASS sha256-of-a-megabyte$/m);
    // Not a Xen domain here: the hypervisor test must fail, and so must the suite.
    if (!fs.existsSync('/sys/hypervisor/type') || fs.readFileSync('/sys/hypervisor/type', 'utf8').trim() !== 'xen') {
      expect(r.out).to.match(/^FAIL xen-hypervisor: expected xen, got /m);
      expect(r.status).to.equal(1);
    }
    expect(fs.readFileSync(path.join(suite, 'logs/primes-below-100000.out'), 'utf8')).to.equal('9592\n');
  });
});
