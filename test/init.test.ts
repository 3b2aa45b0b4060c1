import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { execArgv, parseUnit, readUnit, readUnitConditionPaths, readUnitExecStart } from '../agent/units.js';
import { stateFiles } from '../agent/machine.js';
import { REPO_ROOT } from './support/cli.js';

const INIT = path.join(REPO_ROOT, 'init');
const UNITS = ['xentest-resume.service', 'xentest-schedule.service', 'xentest-runner.service'];
/** The distribution's own units (targets, xen units if any), so the ordering in ours resolves. */
const DISTRO_UNITS = '/usr/lib/systemd/system';

function requireSystemdAnalyze(): void {
  const r = spawnSync('systemd-analyze', ['--version']);
  if (r.error || r.status !== 0 || !fs.existsSync(DISTRO_UNITS)) {
    throw new Error(
      'systemd-analyze (and the distribution units in /usr/lib/systemd/system) are needed to verify the units in init/: ' +
        'install the Debian package "systemd" (apt-get install -y systemd); .ci/run installs it',
    );
  }
}

/**
 * An image root for `systemd-analyze verify --root`: the distribution's units
 * (so targets like multi-user.target and network-online.target exist), our
 * unit files copied byte for byte to /etc/systemd/system, and a stub
 * executable at each ExecStart path (verify checks that it is executable).
 * The unit text verified is exactly the text in init/.
 */
function imageRoot(units: Record<string, string>, stubs: boolean): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'xentest-units-'));
  fs.mkdirSync(path.join(root, 'usr/lib/systemd'), { recursive: true });
  fs.cpSync(DISTRO_UNITS, path.join(root, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
  const etc = path.join(root, 'etc/systemd/system');
  fs.mkdirSync(etc, { recursive: true });
  for (const [name, text] of Object.entries(units)) {
    fs.writeFileSync(path.join(etc, name), text);
    if (!stubs) continue;
    const [exe] = readUnitExecStart(path.join(etc, name));
    const stub = path.join(root, exe!);
    fs.mkdirSync(path.dirname(stub), { recursive: true });
    fs.writeFileSync(stub, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  }
  return root;
}

/** `systemd-analyze verify` of one unit in an image root: everything it says, and its exit status. */
function verify(root: string, name: string): { status: number | null; output: string } {
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', `--root=${root}`, `/etc/systemd/system/${name}`], {
    encoding: 'utf8',
    env: { ...process.env, SYSTEMD_LOG_COLOR: '0', SYSTEMD_PAGER: '' },
  });
  return { status: r.status, output: (r.stdout + r.stderr).trim() };
}

const unitText = (name: string): string => fs.readFileSync(path.join(INIT, name), 'utf8');

describe('init/: the systemd units and the init.d script', function () {
  this.timeout(60_000);
  const roots: string[] = [];
  after(() => {
    for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
  });

  describe('systemd-analyze verify', () => {
    before(requireSystemdAnalyze);

    for (const name of UNITS) {
      it(`${name} passes, with no warning at all`, () => {
        const root = imageRoot({ [name]: unitText(name) }, true);
        roots.push(root);
        const r = verify(root, name);
        expect(r.output, 'what systemd-analyze said').to.equal('');
        expect(r.status).to.equal(0);
      });
    }

    it('would catch a broken unit: an unknown key, a bad value, a missing executable', () => {
      const good = unitText('xentest-resume.service');
      const cases: [string, string, boolean, RegExp][] = [
        ['typo.service', good.replace(/^RemainAfterExit=no$/m, 'RemainAfterExi=no'), true, /Unknown key/],
        ['badtype.service', good.replace(/^Type=exec$/m, 'Type=exect'), true, /service type/],
        ['noexe.service', good, false, /not executable|No such file/],
      ];
      for (const [name, text, stubs, expected] of cases) {
        const root = imageRoot({ [name]: text }, stubs);
        roots.push(root);
        expect(verify(root, name).output, name).to.match(expected);
      }
    });
  });

  describe('xentest-resume.service, read with agent/units', () => {
    const file = path.join(INIT, 'xentest-resume.service');

    it('runs `/usr/local/bin/xentest resume`, only when the marker the agent writes exists', () => {
      expect(readUnitExecStart(file)).to.deep.equal(['/usr/local/bin/xentest', 'resume']);
      expect(readUnitConditionPaths(file)).to.deep.equal(['/var/lib/xentest/start-tests-after-boot']);
      expect(readUnitConditionPaths(file)[0]).to.equal(stateFiles('/var/lib/xentest').marker);
    });

    it('is ordered after the filesystems, the network and the Xen units, without requiring the Xen units', () => {
      const unit = readUnit(file);
      const after = unit.values('Unit', 'After').flatMap((v) => v.split(/\s+/));
      expect(after).to.include.members([
        'local-fs.target',
        'remote-fs.target',
        'network-online.target',
        'xen.service',
        'xencommons.service',
        'xenconsoled.service',
        'xendomains.service',
      ]);
      expect(unit.values('Unit', 'Wants')).to.deep.equal(['network-online.target']);
      const hard = ['Requires', 'Requisite', 'BindsTo', 'PartOf'].flatMap((k) => unit.values('Unit', k)).join(' ');
      expect(hard, 'hard dependencies').to.not.match(/xen/);
    });

    it('does not hold up the boot (Type=exec), logs to the journal, and is enabled for multi-user.target', () => {
      const unit = readUnit(file);
      expect(unit.values('Service', 'Type')).to.deep.equal(['exec']);
      expect(unit.values('Service', 'RemainAfterExit')).to.deep.equal(['no']);
      expect(unit.values('Service', 'StandardOutput')).to.deep.equal(['journal']);
      expect(unit.values('Install', 'WantedBy')).to.deep.equal(['multi-user.target']);
    });
  });

  describe('the other units', () => {
    it('xentest-schedule.service runs the scheduler on /etc/xentest/nightly.cfg and restarts it on failure', () => {
      const file = path.join(INIT, 'xentest-schedule.service');
      expect(readUnitExecStart(file)).to.deep.equal(['/usr/local/bin/xentest', 'schedule', '/etc/xentest/nightly.cfg']);
      expect(readUnit(file).values('Service', 'Restart')).to.deep.equal(['on-failure']);
    });

    it('xentest-runner.service runs `xentest run` after the remote filesystems and the network', () => {
      const file = path.join(INIT, 'xentest-runner.service');
      const unit = readUnit(file);
      expect(readUnitExecStart(file)).to.deep.equal(['/usr/local/bin/xentest', 'run']);
      expect(unit.values('Unit', 'After').flatMap((v) => v.split(/\s+/))).to.include.members(['remote-fs.target', 'network-online.target']);
      expect(unit.values('Unit', 'Wants')).to.deep.equal(['network-online.target']);
    });
  });

  describe('agent/units parsing', () => {
    it('splits ExecStart= as systemd does: quotes, escapes, %%, prefixes, @argv0', () => {
      expect(execArgv(`-/usr/bin/env "a b" 'c d' e\\ f 50%% "x\\"y"`)).to.deep.equal(['/usr/bin/env', 'a b', 'c d', 'e f', '50%', 'x"y']);
      expect(execArgv('@/bin/sleep sleeper 5')).to.deep.equal(['/bin/sleep', '5']);
      expect(execArgv('+!/bin/true')).to.deep.equal(['/bin/true']);
      expect(() => execArgv('/bin/echo "open')).to.throw(/unbalanced/);
    });

    it('reads sections, continuation lines, comments, and resets lists on an empty assignment', () => {
      const unit = parseUnit(
        ['# comment', '[Unit]', 'After=a.target \\', '  b.target', '; another', 'After=c.target', '[Service]', 'ExecStart=/bin/a', 'ExecStart=', 'ExecStart=/bin/b x'].join('\n'),
      );
      expect(unit.values('Unit', 'After')).to.deep.equal(['a.target    b.target', 'c.target']);
      expect(unit.values('Service', 'ExecStart')).to.deep.equal(['/bin/b x']);
      expect(unit.values('Install', 'WantedBy')).to.deep.equal([]);
    });
  });

  describe('xentest.init (for machines without systemd)', () => {
    const script = path.join(INIT, 'xentest.init');

    it('is valid sh and executable', () => {
      const r = spawnSync('sh', ['-n', script], { encoding: 'utf8' });
      expect(r.stderr).to.equal('');
      expect(r.status).to.equal(0);
      expect(fs.statSync(script).mode & 0o111).to.not.equal(0);
    });

    it('has an LSB header with the dependencies', () => {
      const text = fs.readFileSync(script, 'utf8');
      const header = /^### BEGIN INIT INFO\n([\s\S]*?)^### END INIT INFO$/m.exec(text);
      expect(header, 'LSB header block').to.not.equal(null);
      const field = (k: string): string => new RegExp(`^# ${k}:[ \\t]*(.*)$`, 'm').exec(header![1]!)?.[1]?.trim() ?? '';
      expect(field('Provides')).to.equal('xentest');
      expect(field('Required-Start').split(/\s+/)).to.include.members(['$local_fs', '$remote_fs', '$network']);
      expect(field('Should-Start').split(/\s+/)).to.include.members(['xencommons', 'xendomains']);
      expect(field('Default-Start').split(/\s+/)).to.include.members(['2', '3', '4', '5']);
      expect(field('Short-Description')).to.not.equal('');
    });

    it('start runs `xentest resume` in the background only when the marker exists; status tells; stop harms nothing', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xentest-initd-'));
      roots.push(dir);
      const calls = path.join(dir, 'calls');
      const stub = path.join(dir, 'xentest');
      // A stand-in for xentest that records its arguments and runs for a while.
      fs.writeFileSync(stub, `#!/bin/sh\necho "$*" >>'${calls}'\nexec sleep 3\n`, { mode: 0o755 });
      const env = {
        PATH: process.env.PATH,
        XENTEST: stub,
        XENTEST_MARKER: path.join(dir, 'start-tests-after-boot'),
        XENTEST_BOOT_LOG: path.join(dir, 'resume.log'),
        XENTEST_PIDFILE: path.join(dir, 'resume.pid'),
      };
      const initd = (action: string): { status: number | null; out: string } => {
        const r = spawnSync('sh', [script, action], { env, encoding: 'utf8', timeout: 10_000 });
        return { status: r.status, out: r.stdout + r.stderr };
      };

      let r = initd('start');
      expect(r.status).to.equal(0);
      expect(r.out).to.match(/no night to resume/);
      expect(initd('status').status).to.equal(3);
      await new Promise((res) => setTimeout(res, 200));
      expect(fs.existsSync(calls), 'xentest was not run without the marker').to.equal(false);

      fs.writeFileSync(env.XENTEST_MARKER, '');
      const t0 = Date.now();
      r = initd('start');
      expect(r.status).to.equal(0);
      expect(Date.now() - t0, 'start returns at once').to.be.lessThan(2000);
      for (let i = 0; i < 100 && !fs.existsSync(calls); i++) await new Promise((res) => setTimeout(res, 20));
      expect(fs.readFileSync(calls, 'utf8')).to.equal('resume\n');
      const pid = Number(fs.readFileSync(env.XENTEST_PIDFILE, 'utf8'));
      expect(initd('status')).to.deep.include({ status: 0 });
      expect(initd('start').out, 'a second start does not start another').to.match(/already running/);
      expect(initd('stop').status).to.equal(0);
      expect(() => process.kill(pid, 0), 'stop left the night running').to.not.throw();
      expect(initd('bogus').status).to.equal(3);
      process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 100; i++) {
        try {
          process.kill(pid, 0);
        } catch {
          break;
        }
        await new Promise((res) => setTimeout(res, 20));
      }
      expect(fs.readFileSync(calls, 'utf8')).to.equal('resume\n');
    });
  });
});
