/**
 * The `xen` backend's binding to libxencall, loaded for real. On these
 * machines there is no hypervisor, so the binding must load, call
 * xencall_open, and say clearly that /dev/xen/privcmd is missing. On a Xen
 * domain (the lab) the same tests send two real hypercalls whose answers do
 * not depend on privilege: a wrong interface version (EACCES) and an
 * unreadable buffer (EFAULT).
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { BackendUnavailable } from '../agent/fuzz/backend.js';
import { openXenBackend, xencallLibraryAvailable } from '../agent/fuzz/backend-xen.js';
import { CMD, DOMCTL_SIZE, ERRNO, encodeDomctl } from '../agent/fuzz/domctl.js';
import { hasStackTrace } from './support/cli.js';

const XENFC = fileURLToPath(new URL('../../bin/xenfc.js', import.meta.url));
const ON_XEN = existsSync('/dev/xen/privcmd');

function unavailable(f: () => unknown): BackendUnavailable {
  try {
    f();
  } catch (e) {
    if (e instanceof BackendUnavailable) return e;
    throw e;
  }
  throw new Error('expected BackendUnavailable, the backend opened');
}

describe('xenfc: the xen backend (libxencall through koffi)', () => {
  it('names the library it could not load and how to install it', () => {
    const e = unavailable(() => openXenBackend({ library: '/nonexistent/libxencall.so.1' }));
    expect(e.message).to.match(/^cannot load \/nonexistent\/libxencall\.so\.1: /);
    expect(e.hint).to.include('apt-get install libxencall1');
  });

  it("loads Debian's libxencall1 (installed by .ci/run)", () => {
    // Not a skip: without the library the binding is untested, and CI installs it.
    expect(xencallLibraryAvailable(), 'libxencall.so.1 cannot be loaded: apt-get install libxencall1').to.equal(true);
  });

  (ON_XEN ? it.skip : it)('without a hypervisor: xencall_open fails and the error names /dev/xen/privcmd', () => {
    const e = unavailable(() => openXenBackend());
    expect(e.message).to.equal('libxencall cannot open the privileged command interface /dev/xen/privcmd (ENOENT 2)');
    expect(e.hint).to.include('--backend sim');
  });

  (ON_XEN ? it.skip : it)('xenfc --backend xen says so and exits 69, no stack trace', () => {
    const r = spawnSync(process.execPath, [XENFC, '--backend', 'xen', '-l', '1'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).to.equal(69);
    // The seed comes first, as always; nothing was sent.
    expect(r.stdout).to.match(/^Seed: \d+\n$/);
    // libxencall's own logger (stderr when given none) says it first, in its words.
    expect(r.stderr).to.match(/^(xencall: error: Could not obtain handle on privileged command interface: No such file or directory\n)?xenfc: /);
    expect(r.stderr.replace(/^xencall: .*\n/, '')).to.equal(
      'xenfc: libxencall cannot open the privileged command interface /dev/xen/privcmd (ENOENT 2)\n' +
        '  hint: this is not a Xen domain, or the xen privcmd driver is not loaded (modprobe xen-privcmd; mount -t xenfs xenfs /proc/xen); run as root; or use --backend sim\n',
    );
    expect(hasStackTrace(r.stderr)).to.equal(false);
  });

  (ON_XEN ? it : it.skip)('on a Xen domain: a wrong interface version gets EACCES and an unreadable buffer EFAULT', () => {
    const backend = openXenBackend();
    try {
      const buf = new Uint8Array(DOMCTL_SIZE);
      // Interface version 0 is no Xen's: do_domctl refuses it before looking at anything else.
      encodeDomctl({ cmd: CMD.getdomaininfo, interfaceVersion: 0, domain: 0, badBuffer: false }, buf);
      expect(backend.domctl(buf, false)).to.equal(-ERRNO.EACCES);
      expect(backend.domctl(buf, true)).to.equal(-ERRNO.EFAULT);
    } finally {
      backend.close();
    }
  });
});
