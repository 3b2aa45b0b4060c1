import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { elfBuildId } from '../agent/xen/elfnote.js';
import { builtXenIdentity, parseXlInfo, runningXenIdentity, sameXen } from '../agent/xen/identity.js';

function compile(dir: string, name: string, source: string, buildId = true): string {
  const c = join(dir, `${name}.c`);
  const out = join(dir, name);
  writeFileSync(c, source);
  execFileSync('cc', ['-o', out, c, ...(buildId ? ['-Wl,--build-id=sha1'] : ['-Wl,--build-id=none'])]);
  return out;
}

describe('Xen build identity', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'xentest-identity-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the GNU build id of a real ELF file, as readelf -n prints it', () => {
    const a = compile(dir, 'a', 'int main(void) { return 0; }\n');
    const b = compile(dir, 'b', 'int main(void) { return 1; }\n');
    const idA = elfBuildId(a);
    expect(idA).to.match(/^[0-9a-f]{40}$/);
    expect(elfBuildId(b)).to.match(/^[0-9a-f]{40}$/).and.not.equal(idA);
    let readelf = '';
    try {
      readelf = execFileSync('readelf', ['-n', a], { encoding: 'utf8' });
    } catch {
      return; // binutils not installed: the two ids above still had to differ
    }
    expect(readelf).to.include(`Build ID: ${idA}`);
  });

  it('says there is no build id when the linker wrote none, and for a file that is not ELF', () => {
    expect(elfBuildId(compile(dir, 'n', 'int main(void) { return 0; }\n', false))).to.equal(undefined);
    writeFileSync(join(dir, 'text'), 'not an ELF file at all, just some text that is long enough');
    expect(elfBuildId(join(dir, 'text'))).to.equal(undefined);
  });

  it('reads version, changeset, compile date and build id from a built Xen tree', () => {
    mkdirSync(join(dir, 'xen/include/xen'), { recursive: true });
    writeFileSync(
      join(dir, 'xen/include/xen/compile.h'),
      [
        '#define XEN_COMPILE_DATE\t"Sun Nov 22 03:00:00 UTC 2026"',
        '#define XEN_COMPILE_BY\t"root"',
        '#define XEN_VERSION\t4',
        '#define XEN_SUBVERSION\t19',
        '#define XEN_EXTRAVERSION\t"-unstable"',
        '#define XEN_CHANGESET\t"Fri Nov 20 12:00:00 2026 +0000 git:0123abcd"',
        '',
      ].join('\n'),
    );
    const syms = compile(join(dir, 'xen'), 'xen-syms', 'int main(void) { return 19; }\n');
    const id = builtXenIdentity(dir);
    expect(id).to.deep.equal({
      version: '4.19-unstable',
      changeset: 'Fri Nov 20 12:00:00 2026 +0000 git:0123abcd',
      compileDate: 'Sun Nov 22 03:00:00 UTC 2026',
      buildId: elfBuildId(syms),
    });
  });

  it('refuses a tree without compile.h with a message that says why', () => {
    expect(() => builtXenIdentity(dir)).to.throw(/compile\.h is missing: the build did not produce a Xen hypervisor/);
  });

  it('reads xl info and compares identities: build id decides, else version and date', () => {
    const info = parseXlInfo(
      [
        'host                   : bob13',
        'release                : 6.1.0-18-amd64',
        'xen_major              : 4',
        'xen_minor              : 19',
        'xen_extra              : -unstable',
        'xen_version            : 4.19-unstable',
        'xen_changeset          : Fri Nov 20 12:00:00 2026 +0000 git:0123abcd',
        'xen_commandline        : placeholder dom0_mem=1024M,max:1024M',
        'cc_compile_date        : Sun Nov 22 03:00:00 UTC 2026',
        'build_id               : ' + 'ab'.repeat(20),
      ].join('\n'),
    );
    expect(info.get('xen_commandline')).to.equal('placeholder dom0_mem=1024M,max:1024M');
    const running = runningXenIdentity(info);
    expect(running.version).to.equal('4.19-unstable');
    const built = { version: '4.19-unstable', compileDate: 'Sun Nov 22 03:00:00 UTC 2026', buildId: 'ab'.repeat(20) };
    expect(sameXen(built, running)).to.equal(true);
    expect(sameXen({ ...built, buildId: 'cd'.repeat(20) }, running), 'another build id').to.equal(false);
    const noId = { version: '4.19-unstable', compileDate: 'Sun Nov 22 03:00:00 UTC 2026' };
    expect(sameXen(noId, running)).to.equal(true);
    expect(sameXen({ ...noId, compileDate: 'Sat Nov 21 03:00:00 UTC 2026' }, running), 'an older build').to.equal(false);
    expect(sameXen({ ...noId, version: '4.17.5' }, running), 'the fallback').to.equal(false);
  });
});
