import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { REPO_ROOT } from './support/cli.js';

const INSTALL = path.join(REPO_ROOT, 'scripts/install');

interface Ran {
  status: number | null;
  out: string;
}

function install(args: string[], env: NodeJS.ProcessEnv = process.env, script = INSTALL): Ran {
  const r = spawnSync('bash', [script, ...args], { encoding: 'utf8', env, timeout: 120_000 });
  if (r.error) throw r.error;
  return { status: r.status, out: r.stdout + r.stderr };
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Ran {
  const r = spawnSync(file, args, { encoding: 'utf8', env, timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status, out: r.stdout + r.stderr };
}

const pkgVersion = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

describe('scripts/install', function () {
  this.timeout(120_000);
  let root: string;
  const dirs: string[] = [];

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'xentest-install-'));
    dirs.push(root);
  });
  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('installs the package, the command, the units, the init.d script, the state and config directories', () => {
    const r = install(['--root', root]);
    expect(r.status, r.out).to.equal(0);
    const prefix = path.join(root, 'opt/xentest');

    // The command: a link that resolves inside the root, and runs.
    const link = path.join(root, 'usr/local/bin/xentest');
    expect(fs.lstatSync(link).isSymbolicLink()).to.equal(true);
    expect(fs.readlinkSync(link)).to.equal('../../../opt/xentest/bin/xentest.js');
    expect(fs.realpathSync(link)).to.equal(fs.realpathSync(path.join(prefix, 'bin/xentest.js')));
    const viaLink = run(link, ['help']);
    expect(viaLink.status, viaLink.out).to.equal(0);
    expect(viaLink.out).to.match(/^usage: xentest COMMAND/);
    const direct = run(process.execPath, [path.join(prefix, 'bin/xentest.js'), 'help']);
    expect(direct.status, direct.out).to.equal(0);
    expect(direct.out).to.match(/^usage: xentest COMMAND/);
    expect(run(link, ['version']).out.trim()).to.equal(`xentest ${pkgVersion}`);
    // xenfc beside it, runnable from the link.
    const fc = path.join(root, 'usr/local/bin/xenfc');
    expect(fs.readlinkSync(fc)).to.equal('../../../opt/xentest/bin/xenfc.js');
    const fuzz = run(fc, ['--backend', 'sim', '-q', '-l', '1000', '-s', '1']);
    expect(fuzz.status, fuzz.out).to.equal(0);
    expect(fuzz.out).to.match(/^Seed: 1\n/);

    // The package: built code without the tests, production dependencies only.
    for (const f of ['bin/xentest.js', 'package.json', 'package-lock.json', 'dist/agent/cli/main.js', 'conf/example.cfg']) {
      expect(fs.existsSync(path.join(prefix, f)), f).to.equal(true);
    }
    expect(fs.existsSync(path.join(prefix, 'dist/test')), 'dist/test').to.equal(false);
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    for (const dep of Object.keys(pkg.dependencies)) {
      expect(fs.existsSync(path.join(prefix, 'node_modules', dep, 'package.json')), `dependency ${dep}`).to.equal(true);
    }
    for (const dev of Object.keys(pkg.devDependencies)) {
      expect(fs.existsSync(path.join(prefix, 'node_modules', dev)), `dev dependency ${dev}`).to.equal(false);
    }

    // Units, byte for byte; the init.d script, executable.
    for (const unit of ['xentest-resume.service', 'xentest-schedule.service', 'xentest-runner.service']) {
      const installed = path.join(root, 'etc/systemd/system', unit);
      expect(fs.readFileSync(installed, 'utf8'), unit).to.equal(fs.readFileSync(path.join(REPO_ROOT, 'init', unit), 'utf8'));
      expect(fs.statSync(installed).mode & 0o777, unit).to.equal(0o644);
    }
    const initd = path.join(root, 'etc/init.d/xentest');
    expect(fs.readFileSync(initd, 'utf8')).to.equal(fs.readFileSync(path.join(REPO_ROOT, 'init/xentest.init'), 'utf8'));
    expect(fs.statSync(initd).mode & 0o777).to.equal(0o755);

    // Enabled in the image: the WantedBy symlink systemctl makes.
    const wants = path.join(root, 'etc/systemd/system/multi-user.target.wants/xentest-resume.service');
    expect(fs.readlinkSync(wants)).to.equal('/etc/systemd/system/xentest-resume.service');

    // State and configuration.
    expect(fs.statSync(path.join(root, 'var/lib/xentest')).isDirectory()).to.equal(true);
    expect(fs.readFileSync(path.join(root, 'etc/xentest/nightly.cfg.example'), 'utf8')).to.equal(
      fs.readFileSync(path.join(REPO_ROOT, 'conf/example.cfg'), 'utf8'),
    );
    expect(fs.readdirSync(path.join(root, 'opt')), 'no staging directories left').to.deep.equal(['xentest']);
  });

  it('runs twice without harm: replaces the package, keeps state and configuration', () => {
    expect(install(['--root', root]).status).to.equal(0);
    const prefix = path.join(root, 'opt/xentest');
    fs.writeFileSync(path.join(prefix, 'dist/left-over-from-an-old-version.js'), '');
    fs.writeFileSync(path.join(root, 'var/lib/xentest/journal.json'), '{"night": 1}');
    fs.writeFileSync(path.join(root, 'etc/xentest/nightly.cfg'), '[Preferences]\n');
    const second = install(['--root', root]);
    expect(second.status, second.out).to.equal(0);
    expect(fs.existsSync(path.join(prefix, 'dist/left-over-from-an-old-version.js'))).to.equal(false);
    expect(fs.readFileSync(path.join(root, 'var/lib/xentest/journal.json'), 'utf8')).to.equal('{"night": 1}');
    expect(fs.readFileSync(path.join(root, 'etc/xentest/nightly.cfg'), 'utf8')).to.equal('[Preferences]\n');
    expect(run(path.join(root, 'usr/local/bin/xentest'), ['help']).status).to.equal(0);
    expect(fs.readdirSync(path.join(root, 'opt'))).to.deep.equal(['xentest']);
  });

  it('honours --prefix and --no-enable', () => {
    const r = install(['--root', root, '--prefix', '/usr/lib/xentest', '--no-enable']);
    expect(r.status, r.out).to.equal(0);
    expect(fs.readlinkSync(path.join(root, 'usr/local/bin/xentest'))).to.equal('../../lib/xentest/bin/xentest.js');
    expect(run(path.join(root, 'usr/local/bin/xentest'), ['help']).status).to.equal(0);
    expect(fs.existsSync(path.join(root, 'opt'))).to.equal(false);
    expect(fs.existsSync(path.join(root, 'etc/systemd/system/multi-user.target.wants'))).to.equal(false);
    expect(fs.existsSync(path.join(root, 'etc/systemd/system/xentest-resume.service'))).to.equal(true);
  });

  it('refuses Node.js older than 20 with a clear message, before touching anything', () => {
    const fakeBin = path.join(root, 'fake-bin');
    fs.mkdirSync(fakeBin);
    fs.writeFileSync(path.join(fakeBin, 'node'), '#!/bin/sh\necho 18.19.0\n', { mode: 0o755 });
    const image = path.join(root, 'image');
    fs.mkdirSync(image);
    const r = install(['--root', image], { ...process.env, PATH: `${fakeBin}:${process.env.PATH}` });
    expect(r.status).to.equal(1);
    expect(r.out).to.match(/xentest needs Node\.js >= 20; .*node is 18\.19\.0/);
    expect(r.out).to.match(/hint: install Node\.js 20 or newer/);
    expect(fs.readdirSync(image)).to.deep.equal([]);
  });

  it('refuses a checkout that is not built, saying to run npm ci', () => {
    const checkout = path.join(root, 'checkout');
    fs.mkdirSync(path.join(checkout, 'scripts'), { recursive: true });
    fs.mkdirSync(path.join(checkout, 'bin'));
    fs.copyFileSync(INSTALL, path.join(checkout, 'scripts/install'));
    fs.copyFileSync(path.join(REPO_ROOT, 'bin/xentest.js'), path.join(checkout, 'bin/xentest.js'));
    fs.copyFileSync(path.join(REPO_ROOT, 'package.json'), path.join(checkout, 'package.json'));
    const image = path.join(root, 'image');
    fs.mkdirSync(image);
    const r = install(['--root', image], process.env, path.join(checkout, 'scripts/install'));
    expect(r.status).to.equal(1);
    expect(r.out).to.match(/xentest is not built/).and.match(/run "npm ci"/);
    expect(fs.readdirSync(image)).to.deep.equal([]);
  });

  it('rejects unknown options and a relative prefix', () => {
    expect(install(['--frobnicate']).out).to.match(/unknown option: --frobnicate/);
    const r = install(['--root', root, '--prefix', 'opt/x']);
    expect(r.status).to.equal(1);
    expect(r.out).to.match(/--prefix must be an absolute path/);
  });
});
