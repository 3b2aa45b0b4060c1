import { expect } from 'chai';
import { join } from 'node:path';
import { interpretControlFile, loadControlFile, ControlFileInvalid } from '../shared/controlfile/model.js';
import { readControlText } from '../shared/controlfile/reader.js';
import { parseSource } from '../shared/controlfile/sources.js';
import { REPO_ROOT } from './support/cli.js';

function interpret(text: string) {
  return interpretControlFile(readControlText(text, 'x.cfg'));
}

const MINIMAL = `[Preferences]
xen-tree = Xen-Unstable
shared_dir = /xentest/shared/

[Locations]
xen-unstable = https://xenbits.xen.org/git-http/xen.git#staging

[t]
source_url = file:///srv/t.tar.xz#sha256=${'AB'.repeat(32)}
test_dir = ./t/../t
run_command = ./run
  --verbose

[XENVM0]
name = dom0host
tempdir = /tmp/x
config = None
test2 = t
test10 = t
test1 = t
`;

describe('the Xentest model', () => {
  it('reads the paper example into typed preferences, locations, tests and domains with their lines', () => {
    const c = loadControlFile(join(REPO_ROOT, 'conf/paper.cfg'));
    expect(c.preferences.xenTree.name).to.equal('xen-unstable');
    expect(c.preferences.xenTree.source).to.deep.equal({
      kind: 'tarball',
      url: 'http://www.where/to/download/xen-unstable.tgz',
      compression: 'gzip',
    });
    expect(c.preferences.sharedDir.value).to.equal('/xentest/shared');
    expect([...c.locations.keys()]).to.deep.equal(['xen-2.0', 'xen-2.0-testing', 'xen-unstable']);
    const ltp = c.tests.get('LTP');
    expect(ltp?.testDir.value).to.equal('ltp-full-20050207');
    expect(ltp?.logDir?.value).to.equal('logs/ltp');
    expect(ltp?.buildCommand?.value).to.equal('make');
    expect(ltp?.runCommand.line).to.equal(20);
    expect(c.domains.map((d) => d.name.value)).to.deep.equal(['bob13', 'bob13-vm1', 'bob13-vm2']);
    expect(c.domains[0]?.config).to.equal(undefined);
    expect(c.domains[1]?.config?.value).to.equal('/home/plars/xen/xen-sarge/bob13-vm1.config');
    expect(c.domains[2]?.tests.map((t) => [t.key, t.test.name, t.line])).to.deep.equal([['test1', 'LTP', 38]]);
  });

  it('matches xen-tree to a location ignoring case, as cp.get() does, and orders tests by number', () => {
    const { control, problems } = interpret(MINIMAL);
    expect(problems.list).to.deep.equal([]);
    expect(control?.preferences.xenTree.source).to.deep.equal({
      kind: 'git',
      url: 'https://xenbits.xen.org/git-http/xen.git',
      ref: 'staging',
    });
    expect(control?.preferences.sharedDir.value).to.equal('/xentest/shared/');
    const t = control?.tests.get('t');
    expect(t?.source?.value).to.deep.equal({ kind: 'tarball', url: 'file:///srv/t.tar.xz', compression: 'xz', sha256: 'ab'.repeat(32) });
    expect(t?.testDir.value).to.equal('t');
    expect(t?.runCommand.value).to.equal('./run\n--verbose');
    expect(t?.timeoutSeconds).to.equal(3 * 3600);
    expect(t?.unprivileged).to.equal('pass');
    const d = control?.domains[0];
    expect(d?.config, 'config = None means no config').to.equal(undefined);
    expect(d?.tests.map((x) => x.key)).to.deep.equal(['test1', 'test2', 'test10']);
  });

  it('uses [DEFAULT] values and interpolation, and does not call inherited keys unknown', () => {
    const { control, problems } = interpret(
      `[DEFAULT]\nbase = /srv/xt\nmirror = http://m.example\n` +
        `[Preferences]\nxen-tree = x\nshared_dir = %(base)s/shared\n` +
        `[Locations]\nx = %(mirror)s/xen.tar.bz2\n` +
        `[t]\nsource_url = %(mirror)s/t.tgz\ntest_dir = t\nrun_command = true\ntimeout = 90m\nunprivileged = fail\n` +
        `[XENVM9]\nname = h\ntempdir = %(base)s/tmp\ntest1 = t\ntimeout = 2h\n`,
    );
    expect(problems.list).to.deep.equal([]);
    expect(control?.preferences.sharedDir.value).to.equal('/srv/xt/shared');
    expect([...(control?.locations.keys() ?? [])], '[DEFAULT] keys are not locations').to.deep.equal(['x']);
    expect(control?.tests.get('t')?.timeoutSeconds).to.equal(5400);
    expect(control?.tests.get('t')?.unprivileged).to.equal('fail');
    expect(control?.domains[0]?.tempdir.value).to.equal('/srv/xt/tmp');
    expect(control?.domains[0]?.timeoutSeconds).to.equal(7200);
  });

  it('refuses to hand out a model when there are errors, and lists them', () => {
    const { control, problems } = interpret(MINIMAL.replace('name = dom0host', 'name = -bad-'));
    expect(control).to.equal(undefined);
    expect(problems.errors.map((p) => [p.line, p.message])).to.deep.equal([
      [15, '[XENVM0] name = -bad- is not a valid hostname'],
    ]);
  });

  it('throws ControlFileInvalid from loadControlFile with every error', () => {
    try {
      loadControlFile(join(REPO_ROOT, 'test/fixtures/check/parse-errors-several.cfg'));
      expect.fail('should have thrown');
    } catch (e) {
      expect(e).to.be.instanceOf(ControlFileInvalid);
      expect((e as ControlFileInvalid).problems.map((p) => p.line)).to.deep.equal([9, 16]);
    }
  });
});

describe('tree and test sources', () => {
  const ok: Array<[string, object]> = [
    ['http://h/x/xen-4.17.tar.gz', { kind: 'tarball', url: 'http://h/x/xen-4.17.tar.gz', compression: 'gzip' }],
    ['https://h/xen.tgz', { kind: 'tarball', url: 'https://h/xen.tgz', compression: 'gzip' }],
    ['https://h/xen.TAR.BZ2', { kind: 'tarball', url: 'https://h/xen.TAR.BZ2', compression: 'bzip2' }],
    ['http://h/xen.tbz2', { kind: 'tarball', url: 'http://h/xen.tbz2', compression: 'bzip2' }],
    ['http://h/xen.txz', { kind: 'tarball', url: 'http://h/xen.txz', compression: 'xz' }],
    ['/srv/m/xen.tar.xz', { kind: 'tarball', url: 'file:///srv/m/xen.tar.xz', compression: 'xz' }],
    ['git://xenbits.xen.org/xen.git', { kind: 'git', url: 'git://xenbits.xen.org/xen.git' }],
    ['git://h/xen.git#RELEASE-4.17.0', { kind: 'git', url: 'git://h/xen.git', ref: 'RELEASE-4.17.0' }],
    ['git+https://h/linux#v6.1', { kind: 'git', url: 'https://h/linux', ref: 'v6.1' }],
    ['git+file:///srv/git/xen#abc123', { kind: 'git', url: 'file:///srv/git/xen', ref: 'abc123' }],
    ['https://h/xen.git#staging', { kind: 'git', url: 'https://h/xen.git', ref: 'staging' }],
    ['ssh://git@h/xen.git', { kind: 'git', url: 'ssh://git@h/xen.git' }],
    ['file:///srv/repo.git#main', { kind: 'git', url: 'file:///srv/repo.git', ref: 'main' }],
    ['/srv/src/xen/', { kind: 'directory', path: '/srv/src/xen/' }],
    ['file:///srv/src/xen', { kind: 'directory', path: '/srv/src/xen' }],
  ];
  for (const [text, source] of ok) {
    it(`understands ${text}`, () => {
      expect(parseSource(text)).to.deep.equal({ ok: true, source });
    });
  }

  const bad: Array<[string, RegExp]> = [
    ['', /empty/],
    ['ftp://h/xen.tgz', /scheme "ftp:"/],
    ['rsync://h/xen', /scheme "rsync:"/],
    ['http://h/xen.zip', /\.zip file/],
    ['http://h/xen.tar', /\.tar file/],
    ['http://h/download', /does not name a tarball/],
    ['http://h/xen.tgz#md5=abc', /not a sha256 pin/],
    ['http://h/xen.tgz#sha256=1234', /not a sha256 pin/],
    ['xen.tgz', /neither a URL nor an absolute path/],
    ['/srv/dir#ref', /cannot have "#ref"/],
    ['http://h/a b.tgz', /white space/],
    ['http://[bad/x.tgz', /not a valid URL/],
  ];
  for (const [text, reason] of bad) {
    it(`refuses ${JSON.stringify(text)} and says why`, () => {
      const r = parseSource(text);
      expect(r.ok).to.equal(false);
      if (!r.ok) {
        expect(r.reason).to.match(reason);
        expect(r.hint).to.be.a('string').and.not.equal('');
      }
    });
  }
});
