/**
 * The simulated Xen host (scripts/simhost): the fake machine the agent's
 * integration tests run against. Its commands are run here as the agent runs
 * them (real processes found on PATH), its files read as GRUB and the agent
 * read them, and the Xen-like tree is built by the real make and compiler.
 */
import { expect } from 'chai';
import { execFileSync, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { gnuBuildId } from '../scripts/simhost/elf.js';
import { SimHost, type BootRecord } from '../scripts/simhost/host.js';
import { writeSimXenTarball, writeSimXenTree } from '../scripts/simhost/xentree.js';

const NEW = { major: 4, minor: 19, extra: '-unstable' };
const BAD = { major: 4, minor: 20, extra: '-unstable' };
const KERNEL = '6.1.0-18-amd64';
const XEN_ADV = 'Advanced options for Debian GNU/Linux (with Xen hypervisor)';

let work: string;
let machines = 0;
const hosts: SimHost[] = [];

function newHost(opts: Parameters<typeof SimHost.create>[1] = {}): SimHost {
  const h = SimHost.create(join(work, `m${++machines}`), opts);
  hosts.push(h);
  return h;
}

function sh(host: SimHost, command: string, timeoutMs = 30_000): SpawnSyncReturns<string> {
  return spawnSync('/bin/sh', ['-c', command], { env: host.env(), encoding: 'utf8', timeout: timeoutMs, cwd: '/' });
}

function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The reboot command as the agent runs it (through sh, so the caller's parent exits at once). */
function reboot(host: SimHost, command = 'reboot'): SpawnSyncReturns<string> {
  return sh(host, `${command}; true`);
}

function uuidOf(host: SimHost): string {
  return (JSON.parse(readFileSync(join(host.dir, 'state/machine.json'), 'utf8')) as { uuid: string }).uuid;
}

/** Copy a `make install DESTDIR=stage` into the machine's root (symlinks kept). */
function installStaged(host: SimHost, stage: string): void {
  execFileSync('cp', ['-a', `${stage}/.`, host.root]);
}

function readelfBuildId(file: string): string | undefined {
  const r = spawnSync('readelf', ['-n', file], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  return /Build ID: ([0-9a-f]+)/.exec(r.stdout)?.[1];
}

function xlInfo(host: SimHost): Map<string, string> {
  const r = sh(host, 'xl info');
  expect(r.status, r.stderr).to.equal(0);
  const m = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const hit = /^(\S+)\s*: (.*)$/.exec(line);
    if (hit) m.set(hit[1] as string, hit[2] as string);
  }
  return m;
}

/** A test-only reading of grub.cfg, independent of the simulator's own parser: menu paths and loader lines. */
interface CfgEntry {
  titles: string[];
  ids: string[];
  lines: string[];
}

function parseMenu(cfg: string): CfgEntry[] {
  const out: CfgEntry[] = [];
  const stack: Array<{ kind: string; title: string; id: string; lines: string[] } | null> = [];
  for (const line of cfg.split('\n')) {
    const m = /^\s*(menuentry|submenu) '((?:[^']|'\\'')*)'(?: --class \S+)* \$menuentry_id_option '([^']+)' \{$/.exec(line);
    if (m) {
      stack.push({ kind: m[1] as string, title: (m[2] as string).replace(/'\\''/g, "'"), id: m[3] as string, lines: [] });
      continue;
    }
    if (/\{\s*$/.test(line)) {
      stack.push(null);
      continue;
    }
    if (/^\s*\}\s*$/.test(line)) {
      const node = stack.pop();
      if (node && node.kind === 'menuentry') {
        const chain = [...stack.filter((n) => n !== null), node] as Array<{ title: string; id: string }>;
        out.push({ titles: chain.map((n) => n.title), ids: chain.map((n) => n.id), lines: node.lines });
      }
      continue;
    }
    const top = stack[stack.length - 1];
    if (top) top.lines.push(line.trim());
  }
  return out;
}

function xenEntryTitlePath(ver: string): string {
  return `${XEN_ADV}>Xen hypervisor, version ${ver}>Debian GNU/Linux, with Xen ${ver} and Linux ${KERNEL}`;
}

let stageNew: string;
let stageBad: string;
let treeNew: string;

describe('simulated Xen host', function () {
  this.timeout(60_000);

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'simhost-test-'));
    treeNew = join(work, 'tree-new');
    stageNew = join(work, 'stage-new');
    stageBad = join(work, 'stage-bad');
    writeSimXenTree(treeNew, { version: NEW, changeset: 'Mon Nov 3 10:00:00 2025 +0000 git:5e1f0c2d4b' });
    execFileSync('make', ['-s', '-C', treeNew, 'install', `DESTDIR=${stageNew}`], { stdio: 'pipe' });
    const treeBad = join(work, 'tree-bad');
    writeSimXenTree(treeBad, { version: BAD, unbootable: true });
    execFileSync('make', ['-s', '-C', treeBad, 'install', `DESTDIR=${stageBad}`], { stdio: 'pipe' });
  });

  after(async () => {
    for (const h of hosts) await h.powerOff();
    rmSync(work, { recursive: true, force: true });
  });

  describe('a new machine', () => {
    it('is booted (boot 0) into its packaged Xen, and saved_entry in a 1024-byte grubenv names that entry', () => {
      const h = newHost();
      const boots = h.boots();
      expect(boots).to.have.length(1);
      expect(boots[0]).to.include({ n: 0, cause: 'create', fellBack: false, image: '/boot/xen-4.17-amd64.gz', hypervisorVersion: '4.17.5' });
      const running = h.running();
      expect(running.kind).to.equal('xen');
      expect(running.hypervisor?.version).to.equal('4.17.5');
      expect(running.dom0).to.include({ id: 0, name: 'Domain-0', memoryMiB: 1024 });
      expect(running.domains).to.deep.equal([]);

      const env = readFileSync(join(h.root, 'boot/grub/grubenv'), 'latin1');
      expect(env.length).to.equal(1024);
      expect(env.startsWith('# GRUB Environment Block\n')).to.equal(true);
      expect(env).to.match(/\nsaved_entry=[^\n]+\n#+$/);
      expect(h.grubEnv().saved_entry).to.equal(xenEntryTitlePath('4.17-amd64'));
      expect(xlInfo(h).get('xen_version')).to.equal('4.17.5');
      expect(existsSync(join(h.root, 'proc/sys/kernel/random/boot_id'))).to.equal(true);
      expect(readlinkSync(join(h.root, 'usr/local/bin/xentest'))).to.match(/bin\/xentest\.js$/);
    });
  });

  describe('update-grub', () => {
    it("writes an entry for every Xen image in /boot (Xen's symlinks included) in grub-mkconfig's syntax", () => {
      const h = newHost();
      installStaged(h, stageNew);
      const r = sh(h, 'update-grub');
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stderr).to.match(/^Generating grub configuration file \.\.\.\n/);
      expect(r.stderr).to.match(/Found linux image: \/boot\/vmlinuz-6\.1\.0-18-amd64\n/);
      expect(r.stderr).to.match(/\ndone\n$/);

      const uuid = uuidOf(h);
      const cfg = readFileSync(join(h.root, 'boot/grub/grub.cfg'), 'utf8');
      expect(cfg).to.contain('if [ "${next_entry}" ] ; then\n   set default="${next_entry}"\n   set next_entry=\n   save_env next_entry\n');
      expect(cfg).to.contain('   set default="${saved_entry}"\n');
      expect(cfg).to.match(/### BEGIN \/etc\/grub\.d\/10_linux ###\nmenuentry 'Debian GNU\/Linux' --class debian/);

      const entries = parseMenu(cfg);
      // 10_linux first: native Linux is entry 0, where GRUB falls back to.
      expect(entries[0]?.ids).to.deep.equal([`gnulinux-simple-${uuid}`]);
      const simple = entries.find((e) => e.ids[0] === `xen-gnulinux-simple-${uuid}`);
      expect(simple, 'top-level Xen entry').to.not.equal(undefined);
      for (const ver of ['4.19-unstable', '4.19', '4', 'xen', '4.17-amd64']) {
        const image = ver === 'xen' ? 'xen.gz' : `xen-${ver}.gz`;
        const e = entries.find((x) => x.ids[1] === `xen-hypervisor-${ver}-${uuid}` && !x.titles[2]?.includes('recovery'));
        expect(e, `entry for ${image}`).to.not.equal(undefined);
        expect(e?.titles).to.deep.equal([XEN_ADV, `Xen hypervisor, version ${ver}`, `Debian GNU/Linux, with Xen ${ver} and Linux ${KERNEL}`]);
        expect(e?.ids).to.deep.equal([`gnulinux-advanced-${uuid}`, `xen-hypervisor-${ver}-${uuid}`, `xen-gnulinux-${KERNEL}-advanced-${uuid}`]);
        expect(e?.lines).to.include(`multiboot2\t/boot/${image} placeholder  dom0_mem=1024M,max:1024M \${xen_rm_opts}`);
        expect(e?.lines).to.include(`module2\t/boot/vmlinuz-${KERNEL} placeholder root=UUID=${uuid} ro  quiet`);
        expect(e?.lines).to.include(`module2\t--nounzip   /boot/initrd.img-${KERNEL}`);
      }
      expect(cfg).to.not.contain('.config');
      expect(cfg).to.not.contain('xen-syms');
      // The 20_linux_xen submenu has the same id as 10_linux's: a trap for id paths (see the GRUB test below).
      expect(entries.filter((e) => e.ids[0] === `gnulinux-advanced-${uuid}`).map((e) => e.titles[0])).to.include.members([
        'Advanced options for Debian GNU/Linux',
        XEN_ADV,
      ]);
    });
  });

  describe("GRUB's tools", () => {
    it('grub-reboot, grub-set-default and grub-editenv edit the 1024-byte block; a missing entry is a usage error', () => {
      const h = newHost();
      const env = join(h.root, 'boot/grub/grubenv');
      expect(sh(h, `grub-reboot 'a>b'`).status).to.equal(0);
      expect(sh(h, `grub-set-default 'c>>d'`).status).to.equal(0);
      expect(sh(h, 'grub-editenv - list').stdout).to.equal('saved_entry=c>>d\nnext_entry=a>b\n');
      expect(sh(h, `grub-editenv ${q(env)} unset next_entry`).status).to.equal(0);
      expect(h.grubEnv()).to.deep.equal({ saved_entry: 'c>>d' });
      expect(readFileSync(env).length).to.equal(1024);
      for (const tool of ['grub-reboot', 'grub-set-default']) {
        const r = sh(h, tool);
        expect(r.status).to.equal(1);
        expect(r.stderr).to.equal(`${tool}: error: menu entry not specified.\n`);
        expect(r.stdout).to.contain(`Usage: ${tool} [OPTION] MENU_ENTRY`);
      }
      const missing = sh(h, `grub-editenv ${q(join(h.root, 'nope'))} set a=b`);
      expect(missing.status).to.equal(1);
      expect(missing.stderr).to.contain('No such file or directory');
      expect(h.commandLog().map((c) => [c.argv[0], c.exitStatus])).to.deep.include.members([
        ['grub-reboot', 0],
        ['grub-reboot', 1],
        ['grub-editenv', 1],
      ]);
    });
  });

  describe('GRUB at boot', () => {
    it('boots a grub-reboot entry once, then the default again at the next power cycle', async () => {
      const h = newHost();
      installStaged(h, stageNew);
      expect(sh(h, 'update-grub').status).to.equal(0);
      const uuid = uuidOf(h);
      const entry = `${XEN_ADV}>xen-hypervisor-4.19-unstable-${uuid}>xen-gnulinux-${KERNEL}-advanced-${uuid}`;
      expect(sh(h, `grub-reboot ${q(entry)}`).status).to.equal(0);
      expect(h.grubEnv().next_entry).to.equal(entry);

      const r = reboot(h);
      expect(r.status, r.stderr).to.equal(0);
      const b1 = await h.waitForBoot(1, 30_000);
      expect(b1.asked).to.deep.equal({ entry, source: 'next_entry' });
      expect(b1.fellBack, JSON.stringify(b1)).to.equal(false);
      expect(b1.entry).to.equal(xenEntryTitlePath('4.19-unstable'));
      expect(b1.hypervisorVersion).to.equal('4.19-unstable');
      expect(h.running().hypervisor?.version).to.equal('4.19-unstable');
      // GRUB's `set next_entry=; save_env next_entry` leaves the variable, empty.
      expect(h.grubEnv()).to.have.property('next_entry', '');
      expect(readFileSync(join(h.root, 'boot/grub/grubenv')).length).to.equal(1024);

      const b2 = await h.powerCycle();
      expect(b2.n).to.equal(2);
      expect(b2.cause).to.equal('power-cycle');
      expect(b2.asked.source).to.equal('default');
      expect(b2.hypervisorVersion).to.equal('4.17.5');
      expect(xlInfo(h).get('xen_version')).to.equal('4.17.5');
      const names = h.commandLog().map((c) => c.argv[0]);
      expect(names.filter((n) => n === 'grub-reboot')).to.have.length(1);
      expect(names.filter((n) => n === 'reboot')).to.have.length(1);
    });

    it("resolves a path level by level, first title-or-id match wins, and falls back to a level's first entry", async () => {
      const h = newHost();
      installStaged(h, stageNew);
      expect(sh(h, 'update-grub').status).to.equal(0);
      const uuid = uuidOf(h);
      // All ids: the first component matches 10_linux's submenu, which holds no Xen entry.
      const ids = `gnulinux-advanced-${uuid}>xen-hypervisor-4.19-unstable-${uuid}>xen-gnulinux-${KERNEL}-advanced-${uuid}`;
      expect(sh(h, `grub-reboot ${q(ids)}`).status).to.equal(0);
      reboot(h);
      const b = await h.waitForBoot(1, 30_000);
      expect(b.fellBack).to.equal(true);
      expect(b.entry).to.equal(`Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux ${KERNEL}`);
      expect(b.reason).to.contain(`no entry 'xen-hypervisor-4.19-unstable-${uuid}' in the submenu 'Advanced options for Debian GNU/Linux'`);
      expect(h.running().kind).to.equal('linux');
      const xl = sh(h, 'xl info');
      expect(xl.status).to.equal(1);
      expect(xl.stderr).to.contain('xencall: error: Could not obtain handle on privileged command interface');

      // An entry that does not exist at all: the first entry of the menu (native Linux).
      expect(sh(h, `grub-reboot 'no such entry'`).status).to.equal(0);
      const c = await h.powerCycle();
      expect(c.fellBack).to.equal(true);
      expect(c.entry).to.equal('Debian GNU/Linux');
    });

    it('falls back to the default entry when the one-shot image panics, and records the crash', async () => {
      const h = newHost();
      installStaged(h, stageBad);
      expect(sh(h, 'update-grub').status).to.equal(0);
      const entry = xenEntryTitlePath('4.20-unstable');
      expect(sh(h, `grub-reboot ${q(entry)}`).status).to.equal(0);
      reboot(h);
      const b = await h.waitForBoot(1, 30_000);
      expect(b.fellBack).to.equal(true);
      expect(b.attempts).to.have.length(2);
      expect(b.attempts[0]).to.include({ source: 'next_entry', outcome: 'crashed', image: '/boot/xen-4.20-unstable.gz' });
      expect(b.attempts[0]?.reason).to.contain('Panic');
      expect(b.attempts[1]).to.include({ source: 'default', outcome: 'booted' });
      expect(b.hypervisorVersion).to.equal('4.17.5');
      expect(b.reason).to.contain('XEN_SIM_BOOTS=no');
      expect(h.running().hypervisor?.image).to.equal('/boot/xen-4.17-amd64.gz');
    });

    it('bootFails crashes the next one-shot boot only, and is used up', async () => {
      const h = newHost();
      installStaged(h, stageNew);
      expect(sh(h, 'update-grub').status).to.equal(0);
      h.setFaults({ bootFails: true });
      // The default entry is not one-shot: a power cycle is not affected.
      expect((await h.powerCycle()).fellBack).to.equal(false);
      expect(h.faults().bootFails).to.equal(true);
      const entry = xenEntryTitlePath('4.19-unstable');
      expect(sh(h, `grub-reboot ${q(entry)}`).status).to.equal(0);
      reboot(h);
      const b = await h.waitForBoot(2, 30_000);
      expect(b.fellBack).to.equal(true);
      expect(b.attempts[0]?.reason).to.contain('injected fault: bootFails');
      expect(b.hypervisorVersion).to.equal('4.17.5');
      expect(h.faults().bootFails).to.equal(undefined);
      expect(sh(h, `grub-reboot ${q(entry)}`).status).to.equal(0);
      const again = await h.powerCycle();
      expect(again.fellBack).to.equal(false);
      expect(again.hypervisorVersion).to.equal('4.19-unstable');
    });
  });

  describe('the reboot', () => {
    it('waits for the xentest lock holder, and SIGKILLs it with its children when it does not exit', async () => {
      const h = newHost({ shutdownTimeoutMs: 1500 });
      const lock = join(h.root, 'var/lib/xentest/lock');
      // A holder that ignores SIGTERM and has a child in a process group of its own (as the agent's make would).
      const holder = spawn(
        process.execPath,
        [
          '-e',
          `const { spawn } = require('child_process'); process.on('SIGTERM', () => {});
           const c = spawn('sleep', ['1000'], { detached: true, stdio: 'ignore' });
           require('fs').writeFileSync(${JSON.stringify(lock)}, JSON.stringify({ pid: process.pid, child: c.pid }));
           setInterval(() => {}, 1000);`,
        ],
        { stdio: 'ignore' },
      );
      const deadline = Date.now() + 5000;
      while (!existsSync(lock) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const { pid, child } = JSON.parse(readFileSync(lock, 'utf8')) as { pid: number; child: number };
      const exited = new Promise<NodeJS.Signals | null>((resolve) => holder.on('exit', (_c, s) => resolve(s)));

      const started = Date.now();
      expect(reboot(h).status).to.equal(0);
      // The reboot command returns at once; the boot happens after it.
      expect(Date.now() - started).to.be.below(1400);
      const b = await h.waitForBoot(1, 30_000);
      expect(await exited).to.equal('SIGKILL');
      expect(b.shutdown?.waitedFor).to.deep.equal({ pid, why: 'lock' });
      expect(b.shutdown?.killed).to.include.members([pid, child]);
      expect(b.shutdown?.waitedMs).to.be.at.least(1400);
      expect(existsSync(`/proc/${child}`) && !/\) Z /.test(readFileSync(`/proc/${child}/stat`, 'utf8'))).to.equal(false);
    });

    it('boots as soon as a lock holder exits by itself', async () => {
      const h = newHost({ shutdownTimeoutMs: 10_000 });
      const lock = join(h.root, 'var/lib/xentest/lock');
      // It exits by itself 1.5 s after the reboot was asked for (however slow this machine is to get there).
      const release = join(h.dir, 'release-the-lock');
      const holder = spawn(
        process.execPath,
        ['-e', `const fs = require('fs'); fs.writeFileSync(${JSON.stringify(lock)}, JSON.stringify({ pid: process.pid }));
          const t = setInterval(() => { if (fs.existsSync(${JSON.stringify(release)})) { clearInterval(t); setTimeout(() => {}, 1500); } }, 20);`],
        { stdio: 'ignore' },
      );
      while (!existsSync(lock)) await new Promise((r) => setTimeout(r, 10));
      reboot(h);
      writeFileSync(release, '');
      const b = await h.waitForBoot(1, 30_000);
      expect(b.shutdown?.waitedFor).to.deep.equal({ pid: holder.pid, why: 'lock' });
      expect(b.shutdown?.killed).to.deep.equal([]);
      expect(b.shutdown?.waitedMs).to.be.below(8000);
    });

    it('rebootFails makes reboot and systemctl reboot exit 1 and nothing boots', async () => {
      const h = newHost();
      h.setFaults({ rebootFails: true });
      for (const cmd of ['reboot', 'systemctl reboot']) {
        const r = sh(h, cmd);
        expect(r.status).to.equal(1);
        expect(r.stderr).to.contain('Failed to start reboot.target');
      }
      await new Promise((r) => setTimeout(r, 500));
      expect(h.boots()).to.have.length(1);
      h.setFaults({});
      expect(reboot(h, 'systemctl reboot').status).to.equal(0);
      expect((await h.waitForBoot(1, 30_000)).cause).to.equal('reboot');
    });
  });

  describe('the resume unit', () => {
    /** Stands in for /usr/local/bin/xentest: records how it was run, then does what <root>/fake-mode says. */
    function fakeXentest(): string {
      const file = join(work, 'fake-xentest.mjs');
      writeFileSync(
        file,
        `#!/usr/bin/env node
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
// dom0's runner unit runs this too (xentest run) at every boot: not what these tests watch.
if (process.argv[2] === 'run') process.exit(0);
const root = process.env.XENTEST_ROOT;
appendFileSync(root + '/ran.jsonl', JSON.stringify({ argv: process.argv.slice(2), cwd: process.cwd(), env: process.env }) + '\\n');
console.log('fake xentest ' + process.argv.slice(2).join(' '));
const mode = existsSync(root + '/fake-mode') ? readFileSync(root + '/fake-mode', 'utf8').trim() : 'exit3';
if (mode === 'hang') setInterval(() => {}, 1000);
else process.exitCode = Number(mode.replace('exit', ''));
`,
      );
      return file;
    }

    it("runs the unit's ExecStart under ConditionPathExists, with the machine's paths, cwd / and a service environment", async () => {
      const h = newHost({ xentestBin: fakeXentest() });
      reboot(h);
      const b1 = await h.waitForBoot(1, 30_000);
      expect(b1.resume?.skipped).to.equal('condition');
      expect(b1.resume?.command).to.deep.equal(['/usr/local/bin/xentest', 'resume']);
      expect(b1.resume?.conditions).to.deep.equal([{ path: '/var/lib/xentest/start-tests-after-boot', held: false }]);
      expect(existsSync(join(h.root, 'ran.jsonl'))).to.equal(false);

      writeFileSync(join(h.root, 'var/lib/xentest/start-tests-after-boot'), '');
      const b2 = await h.powerCycle();
      expect(b2.resume?.skipped).to.equal(null);
      expect(b2.resume?.ran).to.deep.equal([process.execPath, join(h.root, 'usr/local/bin/xentest'), 'resume']);
      expect(b2.resumeExitStatus).to.equal(3);
      const ran = JSON.parse(readFileSync(join(h.root, 'ran.jsonl'), 'utf8').trim()) as { argv: string[]; cwd: string; env: NodeJS.ProcessEnv };
      expect(ran.argv).to.deep.equal(['resume']);
      expect(ran.cwd).to.equal('/');
      expect(ran.env.XENTEST_ROOT).to.equal(h.root);
      expect(ran.env.XENTEST_STATE_DIR).to.equal(join(h.root, 'var/lib/xentest'));
      expect(ran.env.SIMHOST_DIR).to.equal(h.dir);
      expect(ran.env.PATH?.split(':')[0]).to.equal(h.binDir);
      // A service's environment, not the test runner's.
      expect(ran.env.MOCHA_COLORS ?? ran.env.npm_lifecycle_event ?? ran.env.HOME).to.equal(undefined);
      expect(h.resumeLog(2)).to.contain('fake xentest resume');
    });

    it('resumeNotRun skips the unit at the next boot only', async () => {
      const h = newHost({ xentestBin: fakeXentest() });
      writeFileSync(join(h.root, 'var/lib/xentest/start-tests-after-boot'), '');
      writeFileSync(join(h.root, 'fake-mode'), 'exit0');
      h.setFaults({ resumeNotRun: true });
      const b1 = await h.powerCycle();
      expect(b1.resume?.skipped).to.equal('fault');
      expect(b1.resumeExitStatus).to.equal(null);
      const b2 = await h.powerCycle();
      expect(b2.resume?.skipped).to.equal(null);
      expect(b2.resumeExitStatus).to.equal(0);
    });

    it('a power cycle kills a running resume and records its boot as cut short', async () => {
      const h = newHost({ xentestBin: fakeXentest() });
      writeFileSync(join(h.root, 'var/lib/xentest/start-tests-after-boot'), '');
      writeFileSync(join(h.root, 'fake-mode'), 'hang');
      reboot(h);
      let pending: string | undefined;
      await h.waitForBoot(1, 1500).catch((e: Error) => (pending = e.message));
      expect(pending).to.contain('in progress');
      writeFileSync(join(h.root, 'fake-mode'), 'exit0');
      const b2 = await h.powerCycle();
      const b1 = h.boots().find((b) => b.n === 1) as BootRecord;
      expect(b1.powerLost).to.equal(true);
      expect(b1.resume?.signal).to.equal('SIGKILL');
      expect(b2.resumeExitStatus).to.equal(0);
      expect(h.boots().map((b) => b.n)).to.deep.equal([0, 1, 2]);
    });
  });

  describe('xl', () => {
    it('info reports the identity of the image booted: the build id readelf finds in xen-syms, compile.h strings', async () => {
      const h = newHost();
      installStaged(h, stageNew);
      expect(sh(h, 'update-grub').status).to.equal(0);
      expect(sh(h, `grub-reboot ${q(xenEntryTitlePath('4.19-unstable'))}`).status).to.equal(0);
      reboot(h);
      await h.waitForBoot(1, 30_000);
      const info = xlInfo(h);
      const syms = join(treeNew, 'xen/xen-syms');
      const fromReadelf = readelfBuildId(syms);
      const expected = fromReadelf ?? gnuBuildId(readFileSync(syms));
      expect(expected).to.match(/^[0-9a-f]{40}$/);
      expect(info.get('build_id')).to.equal(expected);
      if (fromReadelf) expect(gnuBuildId(readFileSync(syms))).to.equal(fromReadelf);
      const compileH = readFileSync(join(treeNew, 'xen/include/xen/compile.h'), 'utf8');
      expect(info.get('cc_compile_date')).to.equal(/#define XEN_COMPILE_DATE\t"([^"]*)"/.exec(compileH)?.[1]);
      expect(info.get('xen_changeset')).to.equal('Mon Nov 3 10:00:00 2025 +0000 git:5e1f0c2d4b');
      expect(info.get('xen_major')).to.equal('4');
      expect(info.get('xen_minor')).to.equal('19');
      expect(info.get('xen_extra')).to.equal('-unstable');
      expect(info.get('xen_version')).to.equal('4.19-unstable');
      expect(info.get('xen_commandline')).to.equal('placeholder dom0_mem=1024M,max:1024M');
      const out = sh(h, 'xl info').stdout;
      expect(out).to.match(/^host {19}: xentest-sim\n/);
      expect(out).to.match(/\nbuild_id {15}: [0-9a-f]{40}\nxend_config_format     : 4\n$/);
    });

    it('create, list, mem-set and destroy change running.json, with xl formats and errors', () => {
      const h = newHost();
      const cfg = join(work, 'vm1.cfg');
      writeFileSync(cfg, '# a PV guest\nname = "vm1"\nmemory = 512\nvcpus = 2\nkernel = "/boot/vmlinuz"\nvif = [ "bridge=xenbr0" ]\n');
      const c = sh(h, `xl create -f ${cfg}`);
      expect(c.status, c.stderr).to.equal(0);
      expect(c.stderr).to.equal(`Parsing config from ${cfg}\n`);
      expect(h.running().domains).to.have.length(1);
      expect(h.running().domains[0]).to.include({ id: 1, name: 'vm1', memoryMiB: 512, vcpus: 2 });

      const list = sh(h, 'xl list');
      expect(list.status).to.equal(0);
      const lines = list.stdout.split('\n');
      expect(lines[0]).to.equal('Name                                        ID   Mem VCPUs\tState\tTime(s)');
      expect(lines[1]).to.match(/^Domain-0 {32} {5}0  1024 {5}4 {5}r----- +\d+\.\d$/);
      expect(lines[2]).to.match(/^vm1 {37} {5}1 {3}512 {5}2 {5}-b---- +\d+\.\d$/);
      expect(sh(h, 'xl list vm1').stdout.split('\n').filter((l) => l)).to.have.length(2);
      const missing = sh(h, 'xl list nosuch');
      expect(missing.status).to.equal(1);
      expect(missing.stderr).to.equal('nosuch is an invalid domain identifier (rc=-6)\n');

      const again = sh(h, `xl create ${cfg}`);
      expect(again.status).to.equal(1);
      expect(again.stderr).to.contain('Domain with name "vm1" already exists');

      expect(sh(h, 'xl mem-set vm1 256').status).to.equal(0);
      expect(h.running().domains[0]).to.include({ targetMiB: 256, memoryMiB: 256 });
      expect(sh(h, 'xl mem-set 0 896m').status).to.equal(0);
      expect(h.running().dom0).to.include({ targetMiB: 896 });
      expect(sh(h, 'xl mem-set vm1 2g').stderr).to.contain('memory_static_max');
      expect(sh(h, 'xl mem-set vm1 12x').stderr).to.equal('invalid memory size: 12x\n');
      expect(sh(h, 'xl mem-set 0 64').status).to.equal(1);
      expect(sh(h, 'xl mem-set vm1').status).to.equal(1);

      const d0 = sh(h, 'xl destroy 0');
      expect(d0.status).to.equal(1);
      expect(d0.stderr).to.contain('Not destroying domain 0');
      expect(sh(h, 'xl destroy vm1').status).to.equal(0);
      expect(h.running().domains).to.deep.equal([]);
      expect(sh(h, 'xl destroy').status).to.equal(1);

      writeFileSync(cfg, 'name = "vm2"\nmemory = 512 512\n');
      const bad = sh(h, `xl create ${cfg}`);
      expect(bad.status).to.equal(1);
      expect(bad.stderr).to.contain(`${cfg}:2: config parsing error near \`512'`);
      writeFileSync(cfg, 'name = "big"\nmemory = 9000\n');
      expect(sh(h, `xl create ${cfg}`).stderr).to.contain('Out of memory');
      const unknown = sh(h, 'xl frobnicate');
      expect(unknown.status).to.equal(1);
      expect(unknown.stderr).to.equal('command not implemented\n');
      expect(h.running().domains).to.deep.equal([]);
    });

    it('faults: an exit status and stderr per subcommand, and a hang only the caller can end', () => {
      const h = newHost();
      h.setFaults({ xl: { info: { exitStatus: 3, stderr: 'xencall: error: injected' }, list: { hang: true } } });
      const info = sh(h, 'xl info');
      expect(info.status).to.equal(3);
      expect(info.stderr).to.equal('xencall: error: injected\n');
      expect(info.stdout).to.equal('');
      const started = Date.now();
      const list = spawnSync('xl', ['list'], { env: h.env(), timeout: 1000, encoding: 'utf8' });
      expect(list.signal).to.equal('SIGTERM');
      expect(Date.now() - started).to.be.within(900, 5000);
      const log = h.commandLog();
      expect(log.find((c) => c.argv.join(' ') === 'xl list')).to.include({ exitStatus: null, hung: true });
      expect(log.find((c) => c.argv.join(' ') === 'xl info')).to.include({ exitStatus: 3 });
      // Other subcommands are untouched.
      expect(sh(h, 'xl mem-set 0 1000').status).to.equal(0);
    });
  });

  describe('the Xen-like tree', () => {
    it("builds with make and installs like Xen: compile.h, a build id, /boot's image and symlinks", () => {
      const compileH = readFileSync(join(treeNew, 'xen/include/xen/compile.h'), 'utf8');
      for (const re of [
        /^#define XEN_COMPILE_DATE\t"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \w+ \d{4}"$/m,
        /^#define XEN_COMPILE_TIME\t"\d\d:\d\d:\d\d"$/m,
        /^#define XEN_COMPILE_BY\t\t"[^"]*"$/m,
        /^#define XEN_COMPILE_DOMAIN\t"[^"]*"$/m,
        /^#define XEN_COMPILE_HOST\t"[^"]+"$/m,
        /^#define XEN_COMPILER\t\t".*\d+\.\d+.*"$/m,
        /^#define XEN_VERSION\t\t4$/m,
        /^#define XEN_SUBVERSION\t\t19$/m,
        /^#define XEN_VERSION_STRING\t"4\.19"$/m,
        /^#define XEN_EXTRAVERSION\t"-unstable"$/m,
        /^#define XEN_CHANGESET\t\t"Mon Nov 3 10:00:00 2025 \+0000 git:5e1f0c2d4b"$/m,
        /^#define XEN_BANNER\t\t\\\n" Xen 4\.19-unstable\\n"\n\n#endif \/\* XEN_COMPILE_H \*\/\n$/m,
      ]) {
        expect(compileH).to.match(re);
      }
      const syms = readFileSync(join(treeNew, 'xen/xen-syms'));
      const id = gnuBuildId(syms);
      expect(id).to.match(/^[0-9a-f]{40}$/);
      const boot = join(stageNew, 'boot');
      expect(lstatSync(join(boot, 'xen-4.19-unstable.gz')).isFile()).to.equal(true);
      for (const link of ['xen-4.19.gz', 'xen-4.gz', 'xen.gz']) expect(readlinkSync(join(boot, link))).to.equal('xen-4.19-unstable.gz');
      expect(existsSync(join(boot, 'xen-4.19-unstable.config'))).to.equal(true);
      expect(existsSync(join(stageNew, 'usr/lib/debug/xen-syms-4.19-unstable'))).to.equal(true);
      expect(gnuBuildId(gunzipSync(readFileSync(join(boot, 'xen-4.19-unstable.gz'))))).to.equal(id);
    });

    it('does not build when failBuild is set: a real compiler error', () => {
      const dir = join(work, 'tree-fail');
      writeSimXenTree(dir, { version: NEW, failBuild: true });
      const r = spawnSync('make', ['-C', dir], { encoding: 'utf8' });
      expect(r.status).to.not.equal(0);
      expect(r.stderr).to.match(/common\/sched\/core\.c:\d+:\d+: error: .sched_ratelimit_us. undeclared/);
      expect(existsSync(join(dir, 'xen/xen.gz'))).to.equal(false);
    });

    it('takes buildSleepSeconds to build, and a killed build leaves no image', async () => {
      const dir = join(work, 'tree-slow');
      writeSimXenTree(dir, { version: NEW, buildSleepSeconds: 30 });
      const make = spawn('make', ['-C', dir, 'build-xen'], { detached: true, stdio: 'ignore' });
      const done = new Promise<NodeJS.Signals | null>((resolve) => make.on('exit', (_c, s) => resolve(s)));
      const deadline = Date.now() + 20_000;
      while (!existsSync(join(dir, 'xen/common/version.o')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 300));
      process.kill(-(make.pid as number), 'SIGKILL');
      expect(await done).to.equal('SIGKILL');
      expect(existsSync(join(dir, 'xen/xen-syms'))).to.equal(false);
    });

    it('records the git changeset as Xen does when none is pinned', function () {
      if (spawnSync('git', ['--version']).status !== 0) this.skip();
      const dir = join(work, 'tree-git');
      writeSimXenTree(dir, { version: NEW });
      const git = (...a: string[]): string =>
        execFileSync('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@example.org', ...a], { encoding: 'utf8' }).trim();
      git('init', '-q');
      git('add', '-A');
      git('commit', '-q', '-m', 'tree');
      const head = git('rev-parse', '--short', 'HEAD');
      execFileSync('make', ['-s', '-C', dir, 'build-xen'], { stdio: 'pipe' });
      const compileH = readFileSync(join(dir, 'xen/include/xen/compile.h'), 'utf8');
      expect(compileH).to.match(new RegExp(`#define XEN_CHANGESET\\t\\t"[^"]+ git:${head}"`));
      expect(git('status', '--porcelain')).to.equal('');
    });

    it('writes a tarball with one top-level directory holding the tree', () => {
      const file = join(work, 'xen.tar.gz');
      writeSimXenTarball(file, { version: NEW });
      const names = execFileSync('tar', ['-tzf', file], { encoding: 'utf8' }).split('\n').filter((n) => n);
      expect(names.every((n) => n.startsWith('xen-4.19-unstable/'))).to.equal(true);
      expect(names).to.include.members(['xen-4.19-unstable/Makefile', 'xen-4.19-unstable/xen/Makefile', 'xen-4.19-unstable/xen/include/xen/compile.h.in']);
      const out = join(work, 'untar');
      mkdirSync(out);
      execFileSync('tar', ['-xzf', file, '-C', out]);
      expect(statSync(join(out, 'xen-4.19-unstable/xen/tools/scmversion')).mode & 0o111).to.not.equal(0);
    });
  });
});
