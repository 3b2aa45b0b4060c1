/**
 * Whole nights on the simulated Xen host: the real agent executable, a real
 * HTTP server on 127.0.0.1, a real make of a real (small) tree, real GRUB
 * files; only the machine behind `xl`, `update-grub`, `grub-reboot` and
 * `reboot` is simulated.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NightData } from '../agent/pipeline/journal.js';
import { readGrubEnv } from '../agent/boot/grubenv.js';
import { writeSimXenTree } from '../scripts/simhost/xentree.js';
import { NEW_XEN, NightLab, TarballServer } from '../scripts/simhost/lab.js';

/**
 * A stand-in for a Linux tree with the targets the agent's default commands
 * use: it "builds" and installs a kernel image and a config with Xen dom0
 * support, where Linux's own makefiles would put them (INSTALL_PATH).
 */
function writeTinyLinuxTree(dir: string, release: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'Makefile'),
    [
      `RELEASE := ${release}`,
      'INSTALL_PATH ?= /boot',
      '.PHONY: olddefconfig bzImage modules kernelrelease modules_install install',
      'olddefconfig:',
      '\tprintf "CONFIG_XEN=y\\nCONFIG_XEN_DOM0=y\\n" > .config',
      'bzImage: olddefconfig',
      '\tprintf "kernel $(RELEASE)\\n" > bzImage',
      'modules:',
      '\t@echo "  LD [M]  drivers/xen/xen-balloon.ko"',
      'kernelrelease:',
      '\t@echo $(RELEASE)',
      'modules_install:',
      '\tmkdir -p $(INSTALL_MOD_PATH)/lib/modules/$(RELEASE)',
      'install:',
      '\tmkdir -p $(INSTALL_PATH)',
      '\tcp bzImage $(INSTALL_PATH)/vmlinuz-$(RELEASE)',
      '\tcp .config $(INSTALL_PATH)/config-$(RELEASE)',
      '',
    ].join('\n'),
  );
}

function nightDirs(lab: NightLab): string[] {
  const nights = join(lab.stateDir, 'nights');
  return existsSync(nights) ? readdirSync(nights).sort().map((n) => join(nights, n)) : [];
}

function journalOf(dir: string): NightData {
  return JSON.parse(readFileSync(join(dir, 'journal.json'), 'utf8')) as NightData;
}

/** status.log lines without their timestamp fields, so they can be compared. */
function statusLines(dir: string): string[] {
  return readFileSync(join(dir, 'status.log'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.replace(/\ttimestamp=\d+\tlocaltime=[^\t]*/, '').replace(/\tduration_ms=\d+/, ''));
}

function stepStatuses(j: NightData): Record<string, string> {
  return Object.fromEntries(j.steps.map((s) => [s.name, `${s.state}/${s.status ?? '-'}`]));
}

const DOMAINS_GOOD = {
  'profilers.start': 'done/GOOD',
  'domains.dispatch': 'done/GOOD',
  'domains.start': 'done/GOOD',
  'domains.wait': 'done/GOOD',
  'profilers.stop': 'done/GOOD',
  'domains.collect': 'done/GOOD',
  'results.store': 'done/GOOD',
  'results.report': 'done/GOOD',
};

const GOOD_NIGHT = {
  fetch: 'done/GOOD',
  'build.xen': 'done/GOOD',
  'install.xen': 'done/GOOD',
  bootloader: 'done/GOOD',
  reboot: 'done/GOOD',
  ...DOMAINS_GOOD,
};

describe('a night on the simulated Xen host', function () {
  this.timeout(180_000);
  let root: string;
  let server: TarballServer;
  const labs: NightLab[] = [];
  const newLab = (...args: ConstructorParameters<typeof NightLab>): NightLab => {
    const lab = new NightLab(...args);
    labs.push(lab);
    return lab;
  };

  beforeEach(async () => {
    root = mkdtempSync(join(tmpdir(), 'xentest-night-'));
    mkdirSync(join(root, 'www'));
    server = new TarballServer(join(root, 'www'));
    await server.start();
  });
  afterEach(async () => {
    for (const lab of labs.splice(0)) await lab.close();
    await server.stop();
    rmSync(root, { recursive: true, force: true });
  });

  async function goodNight(lab: NightLab): Promise<NightData> {
    const run = await lab.build();
    expect(run.status, run.stdout + run.stderr).to.equal(0);
    expect(run.stdout).to.match(/rebooting; it continues at boot/);
    const boot = await lab.sim.waitForBoot(1, 60_000);
    expect(boot.resumeExitStatus, JSON.stringify(boot)).to.equal(0);
    const [dir] = nightDirs(lab).slice(-1);
    return journalOf(dir as string);
  }

  it('fetches over HTTP, builds with make, installs, arms GRUB, reboots, resumes and verifies the new Xen', async () => {
    const lab = newLab(join(root, 'lab'), server);
    const old = lab.sim.running().hypervisor!;
    const j = await goodNight(lab);
    expect(stepStatuses(j)).to.deep.equal(GOOD_NIGHT);
    expect(j.outcome?.status).to.equal('GOOD');
    const running = lab.sim.running().hypervisor!;
    expect(running.version).to.equal('4.19-unstable');
    expect(running.buildId).to.be.a('string').and.not.equal(old.buildId);
    expect(lab.sim.boots()[1]?.fellBack).to.equal(false);
    // The new build is the default now, and the last good build.
    const env = readGrubEnv(join(lab.sim.root, 'boot/grub/grubenv'));
    expect(env.get('saved_entry')).to.equal(j.steps.find((s) => s.name === 'bootloader')?.outputs.entry);
    expect(env.get('next_entry') ?? '').to.equal('');
    const lastGood = JSON.parse(readFileSync(join(lab.stateDir, 'last-good.json'), 'utf8')) as { xen: { buildId: string } };
    expect(lastGood.xen.buildId).to.equal(running.buildId);
    expect(existsSync(join(lab.stateDir, 'start-tests-after-boot')), 'the marker is gone').to.equal(false);
    // status.log: one START/END per step, the reboot block verified with the kernel field.
    const [dir] = nightDirs(lab);
    const lines = statusLines(dir as string);
    for (const step of Object.keys(GOOD_NIGHT)) {
      expect(lines.filter((l) => l.startsWith(`START\t----\t${step}\t`)), step).to.have.length(1);
      expect(lines.filter((l) => l.startsWith(`END GOOD\t----\t${step}\t`)), step).to.have.length(1);
    }
    expect(lines.some((l) => /^\tGOOD\t----\treboot\.verify\tXen 4\.19-unstable/.test(l))).to.equal(true);
    expect(lines.find((l) => l.startsWith('END GOOD\t----\treboot\t'))).to.match(/\tkernel=[^\t]+\txen_version=4\.19-unstable/);
    for (const step of ['fetch', 'build.xen', 'install.xen', 'bootloader', 'reboot']) {
      expect(existsSync(join(dir as string, 'steps', `${step}.log`)) || step === 'fetch', `${step} has its own log`).to.equal(true);
    }
    expect(readFileSync(join(dir as string, 'steps/build.xen.log'), 'utf8')).to.match(/make/);
    // dom0's runner ran its test, and the night collected its results.
    expect(readFileSync(join(dir as string, 'domains/simhost/status.log'), 'utf8')).to.match(/^END GOOD\t[^\t]*\tsmoke\t/m);
    expect(existsSync(join(lab.dir, 'shared/simhost/xentest.conf')), 'the runner removed its control copy').to.equal(false);
  });

  it('does not download, build or reboot when the tree is unchanged', async () => {
    const lab = newLab(join(root, 'lab'), server);
    await goodNight(lab);
    const requestsBefore = server.requests.length;
    const grubRebootsBefore = lab.sim.commandLog().filter((c: { argv: string[] }) => c.argv[0] === 'grub-reboot').length;
    const run = await lab.build();
    expect(run.status, run.stdout + run.stderr).to.equal(0);
    expect(run.stdout).to.match(/unchanged since night/);
    const again = server.requests.slice(requestsBefore);
    expect(again.length).to.be.greaterThan(0);
    expect(again.every((r) => r.conditional && r.status === 304 && r.bodyBytes === 0), JSON.stringify(again)).to.equal(true);
    expect(lab.sim.commandLog().filter((c: { argv: string[] }) => c.argv[0] === 'grub-reboot').length).to.equal(grubRebootsBefore);
    expect(lab.sim.boots()).to.have.length(2);
    const nights = nightDirs(lab);
    const j = journalOf(nights[1] as string);
    expect(stepStatuses(j)).to.deep.equal({
      fetch: 'done/GOOD',
      'build.xen': 'done/TEST_NA',
      'install.xen': 'done/TEST_NA',
      bootloader: 'done/TEST_NA',
      reboot: 'done/TEST_NA',
      ...DOMAINS_GOOD,
    });
    expect(existsSync(join(nights[1] as string, 'steps/build.xen.log'))).to.equal(false);
    // on_unchanged = retest (the default): the domains tested the running build again.
    expect(readFileSync(join(nights[1] as string, 'domains/simhost/status.log'), 'utf8')).to.match(/^END GOOD\t[^\t]*\tsmoke\t/m);
  });

  it('builds a git tree at a ref', async () => {
    const repo = join(root, 'xen.git');
    writeSimXenTree(repo, { version: NEW_XEN, changeset: 'git:from-a-repo' });
    const git = (...args: string[]): string => execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8' });
    git('init', '-q', '-b', 'staging');
    git('add', '-A');
    git('-c', 'user.name=t', '-c', 'user.email=t@e', 'commit', '-qm', 'xen');
    const sha = git('rev-parse', 'HEAD').trim();
    const lab = newLab(join(root, 'lab'), server);
    lab.writeControl(`git+file://${repo}#staging`, {});
    const j = await goodNight(lab);
    expect(stepStatuses(j)).to.deep.equal(GOOD_NIGHT);
    expect(j.steps[0]?.outputs.identities).to.deep.equal({ xen: `git:${sha}` });
  });

  it('builds a dom0 kernel from a Linux tree too, and boots the new Xen with the new kernel', async () => {
    const linux = join(root, 'linux');
    writeTinyLinuxTree(linux, '6.12.0-xentest');
    const lab = newLab(join(root, 'lab'), server);
    lab.writeControl(server.url(lab.tarball), { 'linux-tree': 'linux-next' }, { 'linux-next': linux });
    const j = await goodNight(lab);
    expect(stepStatuses(j)).to.deep.equal({
      fetch: 'done/GOOD',
      'build.xen': 'done/GOOD',
      'install.xen': 'done/GOOD',
      'build.linux': 'done/GOOD',
      'install.linux': 'done/GOOD',
      bootloader: 'done/GOOD',
      reboot: 'done/GOOD',
      ...DOMAINS_GOOD,
    });
    expect(j.steps.find((s) => s.name === 'install.linux')?.outputs.kernel).to.equal('vmlinuz-6.12.0-xentest');
    expect(j.steps.find((s) => s.name === 'bootloader')?.outputs.title).to.equal(
      'Debian GNU/Linux, with Xen 4.19-unstable and Linux 6.12.0-xentest',
    );
    expect(lab.sim.running().kernel?.release).to.equal('6.12.0-xentest');
    expect(lab.sim.running().hypervisor!.version).to.equal('4.19-unstable');
    const identities = j.steps[0]?.outputs.identities as Record<string, string>;
    expect(identities.linux).to.match(/^tree:[0-9a-f]{64}$/);
  });

  it('records a tree that cannot be fetched as ERROR, naming the URL and why', async () => {
    const lab = newLab(join(root, 'lab'), server);
    lab.writeControl(server.url('no-such-xen.tar.gz'), {});
    const run = await lab.build();
    expect(run.status, run.stdout + run.stderr).to.equal(1);
    const j = journalOf(nightDirs(lab)[0] as string);
    const fetch = j.steps.find((s) => s.name === 'fetch');
    expect(fetch?.status).to.equal('ERROR');
    expect(fetch?.reason).to.include(server.url('no-such-xen.tar.gz')).and.match(/404/);
    expect(run.stdout).to.match(/night \S+: ERROR: http:\/\/127\.0\.0\.1:\d+\/no-such-xen\.tar\.gz: .*404/);
    expect(lab.sim.boots()).to.have.length(1);
    expect(existsSync(join(lab.stateDir, 'start-tests-after-boot'))).to.equal(false);
  });

  it('records a failed build as FAIL and leaves the machine on its old build', async () => {
    const lab = newLab(join(root, 'lab'), server, { failBuild: true });
    const old = lab.sim.running().hypervisor!;
    const run = await lab.build();
    expect(run.status, run.stdout + run.stderr).to.equal(1);
    const [dir] = nightDirs(lab);
    const j = journalOf(dir as string);
    expect(j.steps.find((s) => s.name === 'build.xen')?.status).to.equal('FAIL');
    expect(j.steps.find((s) => s.name === 'build.xen')?.reason).to.match(/exited with status/);
    expect(j.outcome?.status).to.equal('FAIL');
    expect(statusLines(dir as string)).to.include.members(['START\t----\tbuild.xen\t']);
    expect(statusLines(dir as string).some((l) => l.startsWith('END FAIL\t----\tbuild.xen\t'))).to.equal(true);
    expect(lab.sim.boots()).to.have.length(1);
    expect(lab.sim.running().hypervisor!.buildId).to.equal(old.buildId);
    expect(readGrubEnv(join(lab.sim.root, 'boot/grub/grubenv')).get('next_entry') ?? '').to.equal('');
    expect(existsSync(join(lab.stateDir, 'start-tests-after-boot'))).to.equal(false);
  });

  it('records a hypervisor that does not boot as ABORT, and the machine comes back on the last good entry', async () => {
    const lab = newLab(join(root, 'lab'), server, { unbootable: true });
    const old = lab.sim.running().hypervisor!;
    const run = await lab.build();
    expect(run.status, run.stdout + run.stderr).to.equal(0);
    // It falls back, is given a second boot to rule out an interruption, and falls back again.
    const first = await lab.sim.waitForBoot(1, 60_000);
    expect(first.fellBack).to.equal(true);
    expect(first.resumeExitStatus).to.equal(0);
    const second = await lab.sim.waitForBoot(2, 60_000);
    expect(second.fellBack).to.equal(true);
    expect(second.resumeExitStatus).to.equal(1);
    const [dir] = nightDirs(lab);
    const j = journalOf(dir as string);
    expect(j.outcome?.status).to.equal('ABORT');
    expect(j.steps.find((s) => s.name === 'reboot')?.reason).to.match(/did not boot 2 times and GRUB fell back to the last good entry/);
    const lines = statusLines(dir as string);
    expect(lines.some((l) => l.startsWith('\tWARN\t----\treboot.retry\t'))).to.equal(true);
    expect(lines.some((l) => l.startsWith('\tABORT\t----\treboot.verify\t'))).to.equal(true);
    expect(lines.some((l) => l.startsWith('END ABORT\t----\treboot\t'))).to.equal(true);
    expect(lab.sim.running().hypervisor!.buildId).to.equal(old.buildId);
    expect(existsSync(join(lab.stateDir, 'last-good.json'))).to.equal(false);
    // Bootable: the next power cycle boots the old default again and resumes nothing.
    const next = await lab.sim.powerCycle();
    expect(next.fellBack).to.equal(false);
    expect(lab.sim.running().hypervisor!.buildId).to.equal(old.buildId);
  });

  it('boots again after a single failed boot, and the night succeeds if the second boot comes up', async () => {
    const lab = newLab(join(root, 'lab'), server);
    lab.sim.setFaults({ bootFails: true });
    const run = await lab.build();
    expect(run.status, run.stdout + run.stderr).to.equal(0);
    expect((await lab.sim.waitForBoot(1, 60_000)).fellBack).to.equal(true);
    const second = await lab.sim.waitForBoot(2, 60_000);
    expect(second.fellBack).to.equal(false);
    expect(second.resumeExitStatus).to.equal(0);
    const j = journalOf(nightDirs(lab)[0] as string);
    expect(j.outcome?.status).to.equal('GOOD');
    expect(lab.sim.running().hypervisor!.version).to.equal('4.19-unstable');
  });

  it('records a failing xl after the reboot as a boot failure', async () => {
    const lab = newLab(join(root, 'lab'), server);
    const run = await lab.build();
    expect(run.status, run.stdout + run.stderr).to.equal(0);
    lab.sim.setFaults({ xl: { info: { exitStatus: 1, stderr: 'xencall: error: Could not obtain handle on privileged command interface' } } });
    await lab.sim.waitForBoot(2, 60_000);
    const j = journalOf(nightDirs(lab)[0] as string);
    expect(j.outcome?.status).to.equal('ABORT');
    expect(j.steps.find((s) => s.name === 'reboot')?.reason).to.match(/xl info exited with status 1.*no hypervisor is running/);
  });

  it('kills a build that hangs past build_timeout, with its whole process group', async () => {
    const lab = newLab(join(root, 'lab'), server, { buildSleepSeconds: 600, preferences: { build_timeout: '2s' } });
    const run = await lab.build();
    expect(run.status, run.stdout + run.stderr).to.equal(1);
    const j = journalOf(nightDirs(lab)[0] as string);
    expect(j.steps.find((s) => s.name === 'build.xen')?.reason).to.match(/timeout/);
    expect(run.ms).to.be.lessThan(30_000);
  });

  it('records a reboot command that fails as ERROR and takes the one-shot entry back', async () => {
    const lab = newLab(join(root, 'lab'), server);
    lab.sim.setFaults({ rebootFails: true });
    const run = await lab.build();
    expect(run.status, run.stdout + run.stderr).to.equal(1);
    const j = journalOf(nightDirs(lab)[0] as string);
    expect(j.steps.find((s) => s.name === 'reboot')?.status).to.equal('ERROR');
    expect(readGrubEnv(join(lab.sim.root, 'boot/grub/grubenv')).get('next_entry') ?? '').to.equal('');
    expect(lab.sim.boots()).to.have.length(1);
  });

  it('gives up on a step that is interrupted again and again, instead of looping', async () => {
    const lab = newLab(join(root, 'lab'), server);
    const crash = { XENTEST_CRASH_AT: 'build.xen:middle' };
    for (let i = 1; i <= 3; i++) {
      const run = await lab.build(crash);
      expect(run.signal, `run ${i}`).to.equal('SIGKILL');
    }
    const last = await lab.build(crash);
    expect(last.status, last.stdout + last.stderr).to.equal(1);
    const j = journalOf(nightDirs(lab)[0] as string);
    expect(j.steps.find((s) => s.name === 'build.xen')?.reason).to.equal('interrupted 3 times; giving up on this step');
    expect(j.outcome?.status).to.equal('ABORT');
    expect(existsSync(join(lab.stateDir, 'start-tests-after-boot'))).to.equal(false);
  });

  it('refuses to start a second night while one holds the lock', async () => {
    const lab = newLab(join(root, 'lab'), server, { buildSleepSeconds: 5 });
    const first = lab.build();
    await new Promise((r) => setTimeout(r, 1500));
    const second = await lab.build();
    expect(second.status, second.stdout + second.stderr).to.equal(3);
    expect(second.stderr).to.match(/xentest build/);
    expect((await first).status).to.equal(0);
    await lab.sim.waitForBoot(1, 60_000);
  });
});
