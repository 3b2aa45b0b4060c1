/**
 * xenfc, the seeded domctl fuzzer: reproducible from its seed, weighted as
 * the paper says, its model of do_domctl checked check by check against the
 * simulated hypervisor, safe among tonight's domains, and able to find and
 * minimise a bug planted in the simulated hypervisor.
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Mulberry32 } from '../shared/random/mulberry32.js';
import { CallGenerator } from '../agent/fuzz/generator.js';
import { DomctlModel, type KnownDomain, type XenProfile } from '../agent/fuzz/model.js';
import { CMD, DOMCTL_SIZE, DOMID, ERRNO, OFF_DOMAIN, encodeDomctl, type DomctlCall } from '../agent/fuzz/domctl.js';
import { GOOD_CONFIG } from '../agent/fuzz/generator.js';
import { SimHypervisor, type PlantedBug } from '../scripts/simhost/hypervisor.js';
import { runSession, type Output } from '../agent/fuzz/session.js';
import { selectTarget, type FuzzTarget } from '../agent/fuzz/target.js';
import type { HypercallBackend } from '../agent/fuzz/backend.js';
import { parseCallSpec, callSpec } from '../agent/fuzz/callspec.js';
import { SimHost } from '../scripts/simhost/host.js';
import { REPO_ROOT, hasStackTrace } from './support/cli.js';

const XENFC = fileURLToPath(new URL('../../bin/xenfc.js', import.meta.url));
const GOLDEN = join(REPO_ROOT, 'test/fixtures/xenfc/seed-1114727452-l300.txt');

function xenfc(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [XENFC, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 64 << 20,
    env: { PATH: process.env.PATH, ...env },
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Each call's block of output: from "[n] op" to its PASS/FAIL/SKIP line. */
function blocks(stdout: string): string[] {
  return stdout.split(/^(?=\[\d+\] op$)/m).filter((b) => b.startsWith('['));
}

const V417: XenProfile = { major: 4, minor: 17, interfaceVersion: 0x15, iommu: false };
const V418: XenProfile = { major: 4, minor: 18, interfaceVersion: 0x16, iommu: false };

/** The model and the simulated hypervisor set up alike; `ask` returns what each says of one call. */
function pair(profile: XenProfile, domains: number[], opts: { caller?: number; iommu?: boolean; bug?: PlantedBug } = {}) {
  const caller = opts.caller ?? 0;
  const privileged = caller === 0;
  const iommu = opts.iommu ?? false;
  const p = { ...profile, iommu };
  const known: KnownDomain[] = (privileged ? domains : [0, caller]).map((id) => ({ id, ours: false, pauseCount: 0, iommu: id === 0 ? iommu : privileged ? false : null }));
  const model = new DomctlModel(p, { domid: caller, privileged }, known, privileged);
  const sim = new SimHypervisor({ major: p.major, minor: p.minor, domains, caller, privileged, iommu, bug: opts.bug ?? null });
  const buf = new Uint8Array(DOMCTL_SIZE);
  const view = new DataView(buf.buffer);
  return {
    model,
    sim,
    ask(call: Partial<DomctlCall> & { cmd: number; domain: number }): { expected: number[]; got: number; returned: number; expectedDomain?: number } {
      const c: DomctlCall = { interfaceVersion: p.interfaceVersion, badBuffer: false, ...call };
      if (c.cmd === CMD.createdomain && !c.create) c.create = { ...GOOD_CONFIG };
      const e = model.expect(c);
      encodeDomctl(c, buf, view);
      const got = -sim.domctl(buf, !c.badBuffer);
      const returned = view.getUint16(OFF_DOMAIN, true);
      model.apply(c, got, returned);
      return { expected: e.errnos, got, returned, ...(e.domain !== undefined ? { expectedDomain: e.domain } : {}) };
    },
  };
}

const silent: Output = { write() {}, flush() {} };

function simTarget(domains: number[], bug: PlantedBug | null = null): { target: FuzzTarget; hv: () => SimHypervisor } {
  let last: SimHypervisor | null = null;
  const target: FuzzTarget = {
    name: 'sim',
    describe: 'test',
    profile: V417,
    caller: { domid: 0, privileged: true },
    initial: domains.map((id) => ({ id, ours: false, pauseCount: 0, iommu: false })),
    complete: true,
    open: (): HypercallBackend => {
      const h = new SimHypervisor({ major: 4, minor: 17, domains, caller: 0, privileged: true, iommu: false, bug });
      last = h;
      return { name: 'sim', domctl: (b, bad) => h.domctl(b, !bad), domains: async () => h.domainIds(), close() {} };
    },
    replayEnv: [],
    replayArgs: ['--backend', 'sim'],
  };
  return { target, hv: () => last! };
}

describe('xenfc: the seeded domctl fuzzer', function () {
  this.timeout(120_000);

  describe('reproducible from the seed', () => {
    it('mulberry32 gives the documented sequence: the same as an independent Python implementation of the algorithm in its header', () => {
      const py = `
M = 0xFFFFFFFF
def gen(seed, n):
    a = seed & M
    out = []
    for _ in range(n):
        a = (a + 0x6D2B79F5) & M
        t = a
        t = ((t ^ (t >> 15)) * (t | 1)) & M
        t = (t ^ ((t + (((t ^ (t >> 7)) * (t | 61)) & M)) & M)) & M
        out.append(t ^ (t >> 14))
    return out
for seed in (0, 1, 1114727452, 4294967295):
    print(' '.join(map(str, gen(seed, 1000))))
`;
      const r = spawnSync('python3', ['-c', py], { encoding: 'utf8' });
      expect(r.status, r.stderr).to.equal(0);
      const rows = r.stdout.trim().split('\n');
      [0, 1, 1114727452, 4294967295].forEach((seed, i) => {
        const m = new Mulberry32(seed);
        const ours = Array.from({ length: 1000 }, () => m.u32());
        expect(ours.join(' '), `seed ${seed}`).to.equal(rows[i]);
      });
    });

    it('prints the seed first, and the same seed gives the same output byte for byte, equal to the stored golden run', () => {
      const a = xenfc(['--backend', 'sim', '-s', '1114727452', '-l', '300']);
      const b = xenfc(['--backend', 'sim', '-s', '1114727452', '-l', '300']);
      expect(a.status, a.stderr).to.equal(0);
      expect(a.stdout.split('\n')[0]).to.equal('Seed: 1114727452');
      expect(b.stdout).to.equal(a.stdout);
      if (process.env.XENFC_WRITE_GOLDEN) writeFileSync(GOLDEN, a.stdout);
      expect(a.stdout).to.equal(readFileSync(GOLDEN, 'utf8'));
      const other = xenfc(['--backend', 'sim', '-s', '1114727453', '-l', '300']);
      expect(other.stdout).to.not.equal(a.stdout);
      // The paper's shape: the structure, what is expected, then the verdict.
      const one = blocks(a.stdout).find((x) => x.includes('.cmd = 2 (destroydomain)') && x.includes('PASS'))!;
      expect(one).to.match(/^\[\d+\] op\n    \.cmd = 2 \(destroydomain\)\n    \.interface_version = 0x15\n    \.domain = \d+\nExpecting -?\d+ \([^)]*\)[^\n]*\nPASS: errno=-?\d+ expected -?\d+/);
    });

    it('a new seed each run when none is given, printed so that it can be replayed', () => {
      const a = xenfc(['--backend', 'sim', '-l', '50']);
      const seed = /^Seed: (\d+)$/m.exec(a.stdout)?.[1];
      expect(seed).to.be.a('string');
      const replay = /^Replay: xenfc (.*)$/m.exec(a.stdout)?.[1]?.split(' ') ?? [];
      expect(replay).to.include.members(['-s', seed!, '-l', '50']);
      expect(xenfc(replay).stdout).to.equal(a.stdout);
    });

    it('-q prints only the seed, failures and the summary', () => {
      const r = xenfc(['--backend', 'sim', '-s', '9', '-l', '2000', '-q']);
      expect(r.status).to.equal(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines[0]).to.equal('Seed: 9');
      expect(lines.slice(1).map((l) => l.split(':')[0])).to.deep.equal(['Target', 'Summary', 'Replay']);
      expect(r.stdout).to.match(/^Summary: 2000 calls: \d+ passed, 0 failed, \d+ withheld/m);
    });
  });

  describe('the weights', () => {
    it('over 1,000,000 loops: 1% +- 0.1 random versions and 80% +- 0.5 valid commands (the generator, and the summary xenfc prints)', () => {
      const gen = new CallGenerator(new Mulberry32(20261207), 0x15);
      let badVersion = 0;
      let valid = 0;
      for (let i = 0; i < 1_000_000; i++) {
        const c = gen.next({ known: [0], ours: [], self: 0 });
        if (c.interfaceVersion !== 0x15) badVersion++;
        if (c.cmd >= 1 && c.cmd <= 5) valid++;
        // Random command numbers never land on a command some Xen defines.
        if (!(c.cmd >= 1 && c.cmd <= 5)) expect(c.cmd === 0 || c.cmd >= 128).to.equal(true);
      }
      expect(Math.abs(badVersion / 1e4 - 1)).to.be.at.most(0.1);
      expect(Math.abs(valid / 1e4 - 80)).to.be.at.most(0.5);

      const r = xenfc(['--backend', 'sim', '-q', '-l', '1000000', '-s', '31337']);
      expect(r.status, r.stdout + r.stderr).to.equal(0);
      const m = /random versions (\d+\.\d+)%, valid commands (\d+\.\d+)%/.exec(r.stdout);
      expect(m, r.stdout).to.not.equal(null);
      expect(Math.abs(Number(m![1]) - 1)).to.be.at.most(0.1);
      expect(Math.abs(Number(m![2]) - 80)).to.be.at.most(0.5);
      expect(r.stdout).to.match(/^Summary: 1000000 calls: \d+ passed, 0 failed/m);
    });
  });

  describe('the model of do_domctl, check by check, against the simulated hypervisor', () => {
    it('1. the struct cannot be copied from the guest: EFAULT, before anything else', () => {
      const t = pair(V417, [0, 1]);
      const r = t.ask({ cmd: CMD.pausedomain, domain: 0, badBuffer: true, interfaceVersion: 0xdead });
      expect(r.expected).to.deep.equal([ERRNO.EFAULT]);
      expect(r.got).to.equal(ERRNO.EFAULT);
    });

    it('2. the wrong interface version: EACCES, before the domain is looked up', () => {
      const t = pair(V417, [0]);
      for (const v of [0, 0x14, 0x16, 0xffffffff]) {
        const r = t.ask({ cmd: CMD.destroydomain, domain: 41244, interfaceVersion: v });
        expect(r.expected).to.deep.equal([ERRNO.EACCES]);
        expect(r.got).to.equal(ERRNO.EACCES);
      }
      // 4.18's version is wrong on 4.17 and right on 4.18.
      expect(pair(V418, [0]).ask({ cmd: CMD.getdomaininfo, domain: 0 }).got).to.equal(0);
    });

    it('3. a missing domain: ESRCH before dispatch, so an unknown command at a missing domain is ESRCH, not ENOSYS; reserved ids never exist', () => {
      const t = pair(V417, [0, 1]);
      for (const [cmd, dom] of [[CMD.destroydomain, 5], [CMD.pausedomain, DOMID.self], [CMD.unpausedomain, DOMID.maxGuest], [0x1234, 7], [0xffffffff, DOMID.allOnes]] as const) {
        const r = t.ask({ cmd, domain: dom });
        expect(r.expected, `cmd ${cmd} domain ${dom}`).to.deep.equal([ERRNO.ESRCH]);
        expect(r.got).to.equal(ERRNO.ESRCH);
      }
    });

    it('0. an unprivileged caller: EPERM for every call, before the struct is read (as a real Xen 4.17.5 answers a Linux 6.1 PV domU, in the lab)', () => {
      const t = pair(V417, [0, 3, 4], { caller: 3 });
      for (const cmd of [CMD.createdomain, CMD.destroydomain, CMD.pausedomain, CMD.unpausedomain, CMD.getdomaininfo, 999]) {
        for (const dom of [0, 3, 4, 9, DOMID.self, DOMID.allOnes]) {
          for (const extra of [{}, { badBuffer: true }, { interfaceVersion: 0x14 }]) {
            const r = t.ask({ cmd, domain: dom, ...extra });
            expect(r.expected, `cmd ${cmd} domain ${dom} ${JSON.stringify(extra)}`).to.deep.equal([ERRNO.EPERM]);
            expect(r.got).to.equal(ERRNO.EPERM);
          }
        }
      }
      // dom0 gets do_domctl's own order for the same calls.
      expect(pair(V417, [0, 3]).ask({ cmd: CMD.pausedomain, domain: 9 }).got).to.equal(ERRNO.ESRCH);
      expect(pair(V417, [0, 3]).ask({ cmd: CMD.pausedomain, domain: 9, badBuffer: true }).got).to.equal(ERRNO.EFAULT);
    });

    it('5. an unknown command at an existing domain: ENOSYS (as a real Xen 4.17.5 answers, in the lab)', () => {
      for (const iommu of [false, true]) {
        const r = pair(V417, [0], { iommu }).ask({ cmd: 0x80000000, domain: 0 });
        expect(r.expected).to.deep.equal([ERRNO.ENOSYS]);
        expect(r.got).to.equal(ERRNO.ENOSYS);
      }
    });

    it('6. pausing or destroying yourself: EINVAL; pause counts: a new domain starts paused, unpausing a running one is EINVAL, the 256th pause EOVERFLOW', () => {
      const t = pair(V417, [0]);
      for (const cmd of [CMD.pausedomain, CMD.destroydomain]) {
        const r = t.ask({ cmd, domain: 0 });
        expect(r.expected).to.deep.equal([ERRNO.EINVAL]);
        expect(r.got).to.equal(ERRNO.EINVAL);
      }
      const made = t.ask({ cmd: CMD.createdomain, domain: 0 });
      expect(made.got).to.equal(0);
      const id = made.returned;
      expect(id).to.be.within(1, DOMID.maxGuest);
      expect(t.ask({ cmd: CMD.unpausedomain, domain: id })).to.include({ got: 0 });
      const again = t.ask({ cmd: CMD.unpausedomain, domain: id });
      expect(again.expected).to.deep.equal([ERRNO.EINVAL]);
      expect(again.got).to.equal(ERRNO.EINVAL);
      for (let i = 0; i < 255; i++) expect(t.ask({ cmd: CMD.pausedomain, domain: id }).got).to.equal(0);
      const over = t.ask({ cmd: CMD.pausedomain, domain: id });
      expect(over.expected).to.deep.equal([ERRNO.EOVERFLOW]);
      expect(over.got).to.equal(ERRNO.EOVERFLOW);
      expect(t.ask({ cmd: CMD.destroydomain, domain: id })).to.include({ got: 0 });
      expect(t.ask({ cmd: CMD.destroydomain, domain: id }).got).to.equal(ERRNO.ESRCH);
    });

    it('getdomaininfo: 4.17 answers with the next domain at or above the id (EINVAL for reserved ids); 4.18 and later say ESRCH', () => {
      const t = pair(V417, [0, 4, 9]);
      const next = t.ask({ cmd: CMD.getdomaininfo, domain: 5 });
      expect(next).to.include({ got: 0, returned: 9, expectedDomain: 9 });
      expect(t.ask({ cmd: CMD.getdomaininfo, domain: 10 }).got).to.equal(ERRNO.ESRCH);
      expect(t.ask({ cmd: CMD.getdomaininfo, domain: 10 }).expected).to.deep.equal([ERRNO.ESRCH]);
      expect(t.ask({ cmd: CMD.getdomaininfo, domain: DOMID.self }).expected).to.deep.equal([ERRNO.EINVAL]);
      expect(t.ask({ cmd: CMD.getdomaininfo, domain: DOMID.self }).got).to.equal(ERRNO.EINVAL);
      const u = pair(V418, [0, 4, 9]);
      expect(u.ask({ cmd: CMD.getdomaininfo, domain: 5 })).to.deep.include({ expected: [ERRNO.ESRCH], got: ERRNO.ESRCH });
      expect(u.ask({ cmd: CMD.getdomaininfo, domain: 4 })).to.include({ got: 0, returned: 4 });
    });

    it('createdomain: a taken id is EEXIST, a free one is used, 0 or a reserved id takes the next free one; each configuration Xen refuses is EINVAL', () => {
      const t = pair(V417, [0, 1]);
      expect(t.ask({ cmd: CMD.createdomain, domain: 1 })).to.deep.include({ expected: [ERRNO.EEXIST], got: ERRNO.EEXIST });
      expect(t.ask({ cmd: CMD.createdomain, domain: 700 })).to.include({ got: 0, returned: 700 });
      expect(t.ask({ cmd: CMD.createdomain, domain: DOMID.invalid })).to.include({ got: 0, returned: 2 });
      for (const bad of [{ flags: 1 << 20 }, { maxVcpus: 0 }, { flags: 2 }, { iommuOpts: 4 }, { grantOpts: 0 }, { grantOpts: 0x11 }]) {
        const r = t.ask({ cmd: CMD.createdomain, domain: 0, create: { ...GOOD_CONFIG, ...bad } });
        expect(r.expected, JSON.stringify(bad)).to.deep.equal([ERRNO.EINVAL]);
        expect(r.got, JSON.stringify(bad)).to.equal(ERRNO.EINVAL);
      }
    });

    it('model and simulated hypervisor agree on 200,000 generated calls, --unsafe (every path, dom0 included)', async () => {
      const { target } = simTarget([0, 1, 2]);
      const b = target.open();
      const r = await runSession(target, b, { seed: 77, loops: 200_000, quiet: true, safety: { unsafe: true, maxDomains: 1000 }, record: false }, silent);
      expect(r.failed).to.equal(0);
      expect(r.passed).to.equal(200_000);
    });
  });

  describe('safety among tonight\'s domains', () => {
    it('by default never pauses, unpauses or destroys a domain it did not create, keeps to --max-domains, and destroys its own at the end', async () => {
      const { target, hv } = simTarget([0, 1, 2]);
      const sent: DomctlCall[] = [];
      const inner = target.open();
      const h = hv();
      const mine = new Set<number>();
      const spy: HypercallBackend = {
        name: 'sim',
        domctl(buf, bad) {
          const v = new DataView(buf.buffer, buf.byteOffset);
          const call = { cmd: v.getUint32(0, true), domain: v.getUint16(8, true) };
          if (!bad && (call.cmd === CMD.destroydomain || call.cmd === CMD.pausedomain || call.cmd === CMD.unpausedomain)) {
            expect([0, 1, 2, DOMID.self], `cmd ${call.cmd} at ${call.domain}`).to.not.include(call.domain);
          }
          const rc = inner.domctl(buf, bad);
          if (rc === 0 && !bad && call.cmd === CMD.createdomain) mine.add(v.getUint16(8, true));
          expect(h.domainIds().filter((id) => id > 2).length).to.be.at.most(3);
          sent.push(call as DomctlCall);
          return rc;
        },
        close() {},
      };
      const r = await runSession(target, spy, { seed: 5, loops: 50_000, quiet: true, safety: { unsafe: false, maxDomains: 3 }, record: false }, silent);
      expect(r.failed).to.equal(0);
      expect(r.withheld).to.be.greaterThan(0);
      expect(mine.size, 'it did create domains').to.be.greaterThan(3);
      expect(h.domainIds(), 'only the domains it found are left').to.deep.equal([0, 1, 2]);
    });

    it("guests started and ended under it by a toolstack (tonight's guests start while dom0 tests): each answer judged against the table as it is then, no false FAIL", async () => {
      /** A run during which another toolstack starts a guest every 5000 calls and ends the one it started before. */
      const underToolstack = async (listable: boolean) => {
        const { target, hv } = simTarget([0, 1, 2]);
        const inner = target.open();
        const h = hv();
        const buf = new Uint8Array(DOMCTL_SIZE);
        const view = new DataView(buf.buffer);
        const toolstack = (call: Omit<DomctlCall, 'interfaceVersion' | 'badBuffer'>): number => {
          encodeDomctl({ interfaceVersion: V417.interfaceVersion, badBuffer: false, ...call }, buf, view);
          return h.domctl(buf, true);
        };
        const guests: number[] = [];
        let n = 0;
        const b: HypercallBackend = {
          name: 'sim',
          domctl(call, bad) {
            if (++n % 5000 === 0) {
              expect(toolstack({ cmd: CMD.createdomain, domain: 0, create: { ...GOOD_CONFIG } })).to.equal(0);
              guests.push(view.getUint16(OFF_DOMAIN, true));
              if (guests.length > 1) expect(toolstack({ cmd: CMD.destroydomain, domain: guests.shift()! })).to.equal(0);
            }
            return inner.domctl(call, bad);
          },
          ...(listable ? { domains: inner.domains! } : {}),
          close() {},
        };
        let text = '';
        const out: Output = { write: (t) => void (text += t), flush() {} };
        const r = await runSession(target, b, { seed: 21, loops: 60_000, quiet: true, safety: { unsafe: false, maxDomains: 8 }, record: false }, out);
        return { r, text, left: h.domainIds(), guests };
      };
      const seen = await underToolstack(true);
      expect(seen.r.failed, seen.text).to.equal(0);
      expect(seen.r.tableChanges).to.be.greaterThan(0);
      expect(seen.text).to.match(/^Note: call \d+: the domain table changed during the run \(domains? [\d, ]+ (appeared|went)/m);
      // Its own domains destroyed, the toolstack's guest left alone.
      expect(seen.left).to.deep.equal([0, 1, 2, ...seen.guests]);
      // Judged against the table it started with, the same run fails: the check above is what keeps it right.
      const blind = await underToolstack(false);
      expect(blind.r.failed).to.be.greaterThan(0);
      expect(blind.r.tableChanges).to.equal(0);
    });

    it('interrupted (a signal between calls), it stops and still destroys its domains', async () => {
      const { target, hv } = simTarget([0]);
      const stop = { requested: null as NodeJS.Signals | null };
      const inner = target.open();
      let n = 0;
      const b: HypercallBackend = {
        name: 'sim',
        domctl(buf, bad) {
          if (++n === 20_000) stop.requested = 'SIGTERM';
          return inner.domctl(buf, bad);
        },
        close() {},
      };
      const r = await runSession(target, b, { seed: 8, loops: 10_000_000, quiet: true, safety: { unsafe: false, maxDomains: 8 }, record: false, stop }, silent);
      expect(r.interrupted).to.equal('SIGTERM');
      expect(r.calls).to.be.below(30_000);
      expect(hv().domainIds()).to.deep.equal([0]);
    });

    it('SIGINT to the command: exit 130, "Interrupted", its domains destroyed, nothing lost', async () => {
      const child = spawn(process.execPath, [XENFC, '--backend', 'sim', '-s', '3', '-l', '100000000'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      await new Promise((r) => setTimeout(r, 1500));
      child.kill('SIGINT');
      const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
      expect(code).to.equal(130);
      expect(out).to.match(/^Interrupted by SIGINT after \d+ calls$/m);
      const created = blocks(out).filter((b) => b.includes('(createdomain)') && /PASS: errno=0 /.test(b)).length;
      const destroyedInRun = blocks(out).filter((b) => b.includes('(destroydomain)') && /PASS: errno=0 /.test(b)).length;
      const cleaned = (out.match(/^Cleanup: destroyed domain \d+$/gm) ?? []).length;
      expect(created).to.be.greaterThan(0);
      expect(destroyedInRun + cleaned).to.equal(created);
    });
  });

  describe('a bug planted in the simulated hypervisor', () => {
    for (const [bug, most] of [['destroy-missing-einval', 1], ['getdomaininfo-reserved-esrch', 1], ['pause-created-eperm', 2]] as const) {
      it(`${bug}: found by a fuzzing run, minimised to ${most === 1 ? 'one call' : 'two calls'}, and the printed command replays it`, () => {
        const env = { XENTEST_SIM_XEN_BUG: bug };
        const r = xenfc(['--backend', 'sim', '-q', '-l', '100000', '-s', '2026', '--minimize'], env);
        expect(r.status, r.stderr).to.equal(1);
        expect(r.stdout).to.match(/^FAIL: errno=/m);
        const m = /^Reproducer \((\d+) calls?, found in \d+ replays\):\n {2}(.*)$/m.exec(r.stdout);
        expect(m, r.stdout.slice(-2000)).to.not.equal(null);
        expect(Number(m![1])).to.be.at.most(most);
        const argv = m![2]!.split(' ');
        expect(argv[0]).to.equal(`XENTEST_SIM_XEN_BUG=${bug}`);
        expect(argv[1]).to.equal('xenfc');
        const replay = xenfc(argv.slice(2), env);
        expect(replay.status).to.equal(1);
        expect(blocks(replay.stdout).length).to.equal(Number(m![1]));
        expect(blocks(replay.stdout).at(-1)).to.match(/FAIL: errno=/);
        // Without the bug, the same calls pass: the reproducer is about the bug.
        expect(xenfc(argv.slice(2)).status).to.equal(0);
      });
    }
  });

  describe('in the domains of the simulated host', () => {
    let work: string;
    let host: SimHost;
    before(() => {
      work = mkdtempSync(join(tmpdir(), 'xenfc-simhost-'));
      const shared = join(work, 'shared');
      mkdirSync(shared);
      const stub = join(work, 'stub.mjs');
      writeFileSync(stub, '#!/usr/bin/env node\nsetInterval(() => {}, 1000);\n');
      host = SimHost.create(join(work, 'm'), { xentestBin: stub, sharedDir: shared });
      const cfg = join(work, 'vm1.cfg');
      writeFileSync(cfg, 'name = "vm1"\nmemory = 256\nvcpus = 1\nkernel = "/boot/vmlinuz"\n');
      const r = spawnSync('xl', ['create', '-f', cfg], { env: host.env(), encoding: 'utf8' });
      expect(r.status, r.stderr).to.equal(0);
    });
    after(async () => {
      await host.powerOff();
      rmSync(work, { recursive: true, force: true });
    });

    it('in a domU, auto picks the simulated hypervisor; nothing succeeds, and every call expects and gets EPERM', () => {
      const vm1 = host.domain('vm1')!;
      const r = xenfc(['-s', '4242', '-l', '3000'], { SIMHOST_DIR: host.dir, XENTEST_ROOT: host.domainRoot('vm1') });
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout).to.contain(`as domain ${vm1.id} (unprivileged)`);
      const bs = blocks(r.stdout).filter((b) => !b.includes('SKIP:'));
      expect(bs.length).to.be.greaterThan(1000);
      for (const b of bs) {
        expect(/^Expecting (.*?) \(/m.exec(b)![1], b).to.equal('-1');
        expect(b).to.match(/PASS: errno=-1 expected -1$/m);
      }
      // NULL pointers and wrong versions among them.
      expect(bs.some((b) => b.includes('NULL pointer'))).to.equal(true);
      expect(bs.some((b) => !b.includes('.interface_version = 0x15\n'))).to.equal(true);
    });

    it('in dom0, the first run works on the table its model was made from, even if a guest starts in between', async () => {
      const env = { ...process.env, SIMHOST_DIR: host.dir, XENTEST_ROOT: host.root };
      const target = await selectTarget({ backend: 'sim', env });
      const cfg = join(work, 'vm-late.cfg');
      writeFileSync(cfg, 'name = "vm-late"\nmemory = 256\nvcpus = 1\nkernel = "/boot/vmlinuz"\n');
      const r = spawnSync('xl', ['create', '-f', cfg], { env: host.env(), encoding: 'utf8' });
      expect(r.status, r.stderr).to.equal(0);
      try {
        const b = target.open();
        expect(await b.domains!()).to.deep.equal(target.initial.map((d) => d.id));
        // A later backend (a minimisation replay) starts from the host as it is then.
        expect(await target.open().domains!()).to.include(host.domain('vm-late')!.id);
      } finally {
        expect(spawnSync('xl', ['destroy', 'vm-late'], { env: host.env(), encoding: 'utf8' }).status).to.equal(0);
      }
    });

    it('in dom0, it sees the guests, errnos as the model says, and leaves the guests alone', () => {
      const before = host.running().domains.map((d) => d.id);
      const r = xenfc(['-q', '-s', '99', '-l', '200000'], { SIMHOST_DIR: host.dir, XENTEST_ROOT: host.root });
      expect(r.status, r.stdout + r.stderr).to.equal(0);
      expect(r.stdout).to.contain('as domain 0 (privileged)');
      expect(r.stdout).to.match(/200000 calls: \d+ passed, 0 failed, [1-9]\d* withheld/);
      expect(host.running().domains.map((d) => d.id)).to.deep.equal(before);
    });
  });

  describe('the command line', () => {
    it('--call replays exactly the calls given; specs round-trip', () => {
      const spec = 'cmd=1,version=0x15,domain=0,max_vcpus=0';
      expect(callSpec(parseCallSpec(spec))).to.equal(spec);
      const r = xenfc(['--backend', 'sim', '--call', spec, '--call', 'cmd=5,version=0x15,domain=0']);
      expect(r.status).to.equal(0);
      expect(r.stdout.split('\n')[0]).to.equal('Seed: none (replaying 2 given calls)');
      expect(blocks(r.stdout).map((b) => /^(PASS|FAIL)/m.exec(b)?.[0])).to.deep.equal(['PASS', 'PASS']);
      expect(r.stdout).to.contain('Expecting -22 (EINVAL: max_vcpus is 0)');
    });

    for (const [args, text] of [
      [['--call', 'cmd=1,domain=0'], 'version= is missing'],
      [['--call', 'cmd=x,version=1,domain=0'], 'cmd=x is not a number'],
      [['--call', 'cmd=1,version=1,domain=70000'], 'not a 16-bit domain id'],
      [['--backend', 'kvm'], 'choose auto, xen or sim'],
      [['-l', 'ten'], '-l ten is not a whole number'],
      [['-s', '4294967296'], 'out of range'],
      [['--bogus'], "Unknown option '--bogus'"],
      [['--backend', 'sim', '--xen-version', '4.16'], '4.16 is older than any domctl interface'],
    ] as const) {
      it(`refuses ${args.join(' ')} with a clear message and no stack trace`, () => {
        const r = xenfc([...args]);
        expect(r.status).to.be.oneOf([64, 69]);
        expect(r.stderr).to.contain(text);
        expect(hasStackTrace(r.stderr)).to.equal(false);
      });
    }

    it('auto on a machine without /dev/xen/privcmd or a simulated host: exit 69, says what to do', () => {
      const r = xenfc(['-l', '1']);
      expect(r.status).to.equal(69);
      expect(r.stdout).to.match(/^Seed: \d+\n$/);
      expect(r.stderr).to.contain('/dev/xen/privcmd does not exist');
      expect(r.stderr).to.contain('--backend sim');
    });

    it('a planted bug the simulated hypervisor does not know is refused', () => {
      const r = xenfc(['--backend', 'sim'], { XENTEST_SIM_XEN_BUG: 'nonsense' });
      expect(r.status).to.equal(69);
      expect(r.stderr).to.contain('destroy-missing-einval');
    });
  });
});
