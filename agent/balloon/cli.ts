/**
 * `xentest balloon`: the balloon-driver suite on this domain's interfaces
 * (sysfs, /proc/xen/balloon) and, in dom0, through `xl mem-set`.
 *
 * Exit status: 0 no scenario failed (GOOD or TEST_NA); 1 a FAIL, or the
 * target could not be put back; 64 a usage error; 69 no interface here.
 */
import { existsSync, accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import { outputIfSucceeded } from '../../shared/process/capture.js';
import { detectPrivilege, isUnprivileged } from '../runner/privilege.js';
import { parseXlInfo } from '../xen/identity.js';
import { UsageError } from '../cli/usage.js';
import { BalloonFormatError, BalloonUnavailable, INTERFACE_NAMES, type BalloonInterface, type InterfaceName } from './interface.js';
import { PROC_BALLOON, ProcBalloon } from './proc.js';
import { SYSFS_BALLOON, SysfsBalloon } from './sysfs.js';
import { XlBalloon } from './xl.js';
import { restoreLeftover, runSuite } from './suite.js';
import { SCENARIOS } from './scenarios.js';

export const EXIT_BALLOON_FAIL = 1;
export const EXIT_BALLOON_UNAVAILABLE = 69;

/** A size as xl takes it: a bare number is MiB; k, m, g suffixes. KiB. */
export function parseSizeKb(text: string, what: string): number {
  const m = /^(\d+)([kmg]?)$/i.exec(text.trim());
  if (!m) throw new UsageError(`${what} ${text} is not a size`, 'give a number of MiB, or a number with k, m or g, e.g. 128m');
  const n = Number(m[1]);
  const unit = (m[2] ?? '').toLowerCase();
  return unit === 'k' ? n : unit === 'g' ? n * 1024 * 1024 : n * 1024;
}

function whole(text: string, what: string, min: number, max: number): number {
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw new UsageError(`${what} ${text} is not a whole number from ${min} to ${max}`);
  return Number(text);
}

function onPath(program: string, env: NodeJS.ProcessEnv): boolean {
  return (env.PATH ?? '').split(delimiter).some((d) => {
    try {
      accessSync(join(d, program), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The interfaces asked for that this domain has; auto: every one it has. */
export function chooseInterfaces(choice: 'auto' | InterfaceName, root: string, env: NodeJS.ProcessEnv, domain: string | undefined): BalloonInterface[] {
  const privileged = !isUnprivileged(detectPrivilege(env));
  const have: Record<InterfaceName, () => BalloonInterface | string> = {
    sysfs: () => (existsSync(join(root, SYSFS_BALLOON, 'target_kb')) ? new SysfsBalloon(root, env) : `${join(root, SYSFS_BALLOON)} does not exist (no balloon driver, or not a Xen domain)`),
    proc: () => (existsSync(join(root, PROC_BALLOON)) ? new ProcBalloon(root, env) : `${join(root, PROC_BALLOON)} does not exist (only XenLinux kernels have it)`),
    xl: () => {
      if (!privileged) return 'xl mem-set works from dom0 only, and this domain is unprivileged';
      if (!onPath('xl', env)) return 'xl is not on PATH (install xen-utils)';
      const own = domain === undefined || domain === '0' || domain === 'Domain-0';
      return new XlBalloon(domain ?? '0', own, env);
    },
  };
  if (choice !== 'auto') {
    const got = have[choice]();
    if (typeof got === 'string') throw new BalloonUnavailable(`--interface ${choice}: ${got}`, 'run "xentest balloon" without --interface to use the interfaces this domain has');
    return [got];
  }
  const got: BalloonInterface[] = [];
  const why: string[] = [];
  for (const name of ['sysfs', 'proc', 'xl'] as const) {
    const g = have[name]();
    if (typeof g === 'string') why.push(g);
    else got.push(g);
  }
  if (got.length === 0) throw new BalloonUnavailable(`no balloon interface here: ${why.join('; ')}`, 'run it in a Xen domain whose kernel has the balloon driver (CONFIG_XEN_BALLOON)');
  return got;
}

async function hostRamKb(env: NodeJS.ProcessEnv): Promise<number | null> {
  const info = await outputIfSucceeded(['xl', 'info'], env).catch(() => null);
  if (info === null) return null;
  const mib = Number(parseXlInfo(info).get('total_memory'));
  return Number.isFinite(mib) && mib > 0 ? mib * 1024 : null;
}

export async function balloonCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      interface: { type: 'string', default: 'auto' },
      domain: { type: 'string' },
      floor: { type: 'string', default: '128m' },
      rapid: { type: 'string', default: '50' },
      'rapid-seconds': { type: 'string', default: '10' },
      seed: { type: 'string' },
      settle: { type: 'string', default: '30' },
      only: { type: 'string', multiple: true, default: [] },
      restore: { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
    },
  });
  const out = (s: string) => process.stdout.write(s + '\n');
  if (values.list) {
    for (const s of SCENARIOS) {
      out(`${s.name}: ${s.summary}`);
      for (const i of INTERFACE_NAMES) out(`  ${i}: ${s.expected[i]}`);
    }
    return 0;
  }
  const choice = values.interface as string;
  if (choice !== 'auto' && !(INTERFACE_NAMES as readonly string[]).includes(choice)) throw new UsageError(`--interface ${choice} is not auto, proc, sysfs or xl`);
  for (const o of values.only as string[]) {
    if (!SCENARIOS.some((s) => s.name === o)) throw new UsageError(`--only ${o}: there is no such scenario`, 'run "xentest balloon --list" for the scenarios');
  }
  const floorKb = parseSizeKb(values.floor as string, '--floor');
  const seed = values.seed === undefined ? randomInt(0, 2 ** 32) : whole(values.seed, '--seed', 0, 2 ** 32 - 1);
  const env = process.env;
  const root = env.XENTEST_ROOT || '/';
  const stateDir = env.XENTEST_STATE_DIR || join(root, 'var/lib/xentest');
  try {
    const ifaces = chooseInterfaces(choice as 'auto' | InterfaceName, root, env, values.domain);
    const restored = await restoreLeftover(ifaces, stateDir, out);
    if (values.restore) {
      if (!restored) out('nothing to restore');
      return 0;
    }
    const canSwitchUser = process.geteuid?.() === 0 && onPath('setpriv', env);
    const host = await hostRamKb(env);
    let failed = false;
    out(`Seed: ${seed}`);
    for (const iface of ifaces) {
      const r = await runSuite(iface, {
        floorKb,
        settleMs: whole(values.settle as string, '--settle', 1, 3600) * 1000,
        rapidCount: whole(values.rapid as string, '--rapid', 0, 1000),
        rapidMs: whole(values['rapid-seconds'] as string, '--rapid-seconds', 1, 600) * 1000,
        seed,
        canSwitchUser,
        hostRamKb: host,
        root,
        log: out,
        stateDir,
        only: values.only as string[],
      });
      const count = (s: string) => r.results.filter((x) => x.result.status === s).length;
      out(`${iface.name} (${iface.where}): ${count('GOOD')} GOOD, ${count('FAIL')} FAIL, ${count('TEST_NA')} TEST_NA${r.stopped ? `; stopped: ${r.stopped}` : ''}`);
      if (count('FAIL') > 0 || r.stopped) failed = true;
    }
    return failed ? EXIT_BALLOON_FAIL : 0;
  } catch (e) {
    if (e instanceof BalloonUnavailable) {
      process.stderr.write(`xentest: ${e.message}\n  hint: ${e.hint}\n`);
      return EXIT_BALLOON_UNAVAILABLE;
    }
    if (e instanceof BalloonFormatError) {
      process.stderr.write(`xentest: ${e.message}\n`);
      return EXIT_BALLOON_FAIL;
    }
    throw e;
  }
}
