/**
 * What the fuzzer is pointed at: a backend to send calls to, and what the
 * caller can know of the machine (Xen's version, its own domain and
 * privilege, the domains that exist) for the model.
 *
 *   xen  the real hypervisor through libxencall; chosen by `auto` when
 *        /dev/xen/privcmd exists
 *   sim  the simulated host's hypervisor: on a simulated machine
 *        (SIMHOST_DIR) the one that runs its domains; elsewhere a fresh one
 *        of its own (dom0 alone, or --sim-caller N: a guest N beside dom0)
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { outputIfSucceeded } from '../../shared/process/capture.js';
import { detectPrivilege } from '../runner/privilege.js';
import { parseXlInfo } from '../xen/identity.js';
import { BackendUnavailable, type HypercallBackend } from './backend.js';
import { domctlInterfaceVersion } from './domctl.js';
import type { Caller, KnownDomain, XenProfile } from './model.js';
import { SimHypervisor, plantedBug, simHypervisorOfHost } from '../../scripts/simhost/hypervisor.js';

export type BackendChoice = 'auto' | 'xen' | 'sim';

export interface TargetOptions {
  backend: BackendChoice;
  /** sim away from a simulated machine: the Xen version to be (default 4.17). */
  xenVersion?: string;
  /** sim away from a simulated machine: call as guest N (unprivileged) instead of dom0. */
  simCaller?: number;
  /** Is an IOMMU in use? Decides whether createdomain may ask for one. Default: off for sim, unknown for xen. */
  iommu?: boolean;
  env?: NodeJS.ProcessEnv;
}

export interface FuzzTarget {
  name: 'xen' | 'sim';
  /** One line for the log: which hypervisor, which caller. */
  describe: string;
  profile: XenProfile;
  caller: Caller;
  initial: KnownDomain[];
  complete: boolean;
  /** A backend in the state the run started from (minimisation replays each candidate on a fresh one). */
  open(): HypercallBackend;
  /** How to run xenfc against this target again: environment assignments and options. */
  replayEnv: string[];
  replayArgs: string[];
}

export async function selectTarget(opts: TargetOptions): Promise<FuzzTarget> {
  const env = opts.env ?? process.env;
  const root = env.XENTEST_ROOT || '/';
  let choice = opts.backend;
  if (choice === 'auto') {
    if (existsSync(join(root, 'dev/xen/privcmd'))) choice = 'xen';
    else if (env.SIMHOST_DIR) choice = 'sim';
    else {
      throw new BackendUnavailable(
        `${join(root, 'dev/xen/privcmd')} does not exist: this is not a Xen domain, or its privcmd driver is not loaded`,
        'run it in a Xen domain (modprobe xen-privcmd if needed), or fuzz the simulated hypervisor with --backend sim',
      );
    }
  }
  return choice === 'xen' ? xenTarget(opts, env, root) : simTarget(opts, env, root);
}

function simTarget(opts: TargetOptions, env: NodeJS.ProcessEnv, root: string): FuzzTarget {
  const iommu = opts.iommu ?? false;
  if (env.SIMHOST_DIR && opts.xenVersion === undefined && opts.simCaller === undefined) {
    const dir = env.SIMHOST_DIR;
    const first = simHypervisorOfHost(dir, root, env);
    const privilege = detectPrivilege(env);
    const privileged = privilege.kind !== 'unprivileged';
    const [major, minor] = readSysHypervisor(root) ?? [4, 17];
    const self = first.callerDomid();
    const all = first.domainIds();
    const known = privileged ? all : [...new Set([0, self])].sort((a, b) => a - b);
    let reuse: SimHypervisor | null = first;
    return {
      name: 'sim',
      describe: `the simulated machine ${dir}'s Xen ${major}.${minor}, as domain ${self} (${privileged ? 'privileged' : 'unprivileged'})`,
      profile: { major, minor, interfaceVersion: domctlInterfaceVersion(major, minor), iommu },
      caller: { domid: self, privileged },
      initial: known.map((id) => ({ id, ours: false, pauseCount: 0, iommu: id === 0 ? iommu : privileged ? false : null })),
      complete: privileged,
      // The first run works on the table its model was made from (a guest started in between would be a
      // domain the model has never heard of); minimisation's replays each start from the host as it is then.
      open: () => {
        const h = reuse ?? simHypervisorOfHost(dir, root, env);
        reuse = null;
        return simBackend(h);
      },
      replayEnv: replayEnv(env, ['SIMHOST_DIR', 'XENTEST_ROOT', 'XENTEST_SIM_XEN_BUG']),
      replayArgs: ['--backend', 'sim'],
    };
  }
  const version = opts.xenVersion ?? '4.17';
  const m = /^(\d+)\.(\d+)$/.exec(version);
  if (!m) throw new BackendUnavailable(`--xen-version ${version} is not MAJOR.MINOR`, 'for example --xen-version 4.17');
  const major = Number(m[1]);
  const minor = Number(m[2]);
  const interfaceVersion = domctlInterfaceVersion(major, minor);
  const callerId = opts.simCaller ?? 0;
  const privileged = callerId === 0;
  const domains = privileged ? [0] : [0, callerId];
  const make = (): SimHypervisor => new SimHypervisor({ major, minor, domains, caller: callerId, privileged, iommu, bug: plantedBug(env) });
  return {
    name: 'sim',
    describe: `a simulated Xen ${major}.${minor}, as ${privileged ? 'dom0' : `guest domain ${callerId} (unprivileged)`}`,
    profile: { major, minor, interfaceVersion, iommu },
    caller: { domid: callerId, privileged },
    initial: domains.map((id) => ({ id, ours: false, pauseCount: 0, iommu: id === 0 ? iommu : false })),
    complete: privileged,
    open: () => simBackend(make()),
    replayEnv: replayEnv(env, ['XENTEST_SIM_XEN_BUG']),
    replayArgs: [
      '--backend', 'sim',
      ...(opts.xenVersion ? ['--xen-version', version] : []),
      ...(opts.simCaller ? ['--sim-caller', String(callerId)] : []),
      ...(opts.iommu !== undefined ? ['--iommu', iommu ? 'on' : 'off'] : []),
    ],
  };
}

function simBackend(h: SimHypervisor): HypercallBackend {
  return { name: 'sim', domctl: (buf, badBuffer) => h.domctl(buf, !badBuffer), domains: async () => h.domainIds(), close: () => {} };
}

function replayEnv(env: NodeJS.ProcessEnv, keys: string[]): string[] {
  return keys.filter((k) => env[k]).map((k) => `${k}=${env[k]}`);
}

/** /sys/hypervisor/version/{major,minor}: Linux shows them in every Xen domain. */
function readSysHypervisor(root: string): [number, number] | null {
  try {
    const dir = join(root, 'sys/hypervisor/version');
    const major = Number(readFileSync(join(dir, 'major'), 'utf8').trim());
    const minor = Number(readFileSync(join(dir, 'minor'), 'utf8').trim());
    return Number.isInteger(major) && Number.isInteger(minor) ? [major, minor] : null;
  } catch {
    return null;
  }
}

/** A command's whole output (small: xl list, xl info, xenstore-read), or null if it failed. */

async function xenTarget(opts: TargetOptions, env: NodeJS.ProcessEnv, root: string): Promise<FuzzTarget> {
  // Loaded only here: the sim backend needs neither koffi nor libxencall.
  const { openXenBackend } = await import('./backend-xen.js');
  const first = openXenBackend();
  const privileged = detectPrivilege(env).kind !== 'unprivileged';
  let version = readSysHypervisor(root);
  if (!version && privileged) {
    const info = await outputIfSucceeded(['xl', 'info'], env);
    if (info) {
      const i = parseXlInfo(info);
      const major = Number(i.get('xen_major'));
      const minor = Number(i.get('xen_minor'));
      if (Number.isInteger(major) && Number.isInteger(minor)) version = [major, minor];
    }
  }
  if (!version) {
    first.close();
    throw new BackendUnavailable(
      `cannot tell which Xen runs here: ${join(root, 'sys/hypervisor/version')} is unreadable${privileged ? ' and xl info failed' : ''}`,
      'the fuzzer needs the version for the domctl interface version; check that this is a Xen domain with sysfs mounted',
    );
  }
  const [major, minor] = version;
  let self: number | null = privileged ? 0 : null;
  let ids: number[];
  if (privileged) {
    const list = await outputIfSucceeded(['xl', 'list'], env);
    if (list === null) {
      first.close();
      throw new BackendUnavailable('xl list failed: the fuzzer needs the domain table to know what Xen must answer', 'check that xen toolstack services run (systemctl status xen xenstored)');
    }
    ids = parseXlListIds(list);
  } else {
    const out = await outputIfSucceeded(['xenstore-read', 'domid'], env);
    const n = out === null ? NaN : Number(out.trim());
    if (Number.isInteger(n)) self = n;
    ids = self === null ? [0] : [...new Set([0, self])];
  }
  const iommu = opts.iommu ?? null;
  let reuse: HypercallBackend | null = first;
  return {
    name: 'xen',
    describe: `Xen ${major}.${minor} through libxencall, as ${privileged ? 'dom0 (privileged)' : `domain ${self ?? '?'} (unprivileged)`}`,
    profile: { major, minor, interfaceVersion: domctlInterfaceVersion(major, minor), iommu },
    caller: { domid: self, privileged },
    initial: ids.map((id) => ({ id, ours: false, pauseCount: 0, iommu: id === 0 ? iommu : null })),
    complete: privileged,
    open: () => {
      const b = reuse ?? openXenBackend();
      reuse = null;
      if (!privileged) return b;
      const domains = async (): Promise<number[] | null> => {
        const list = await outputIfSucceeded(['xl', 'list'], env);
        return list === null ? null : parseXlListIds(list);
      };
      return { ...b, domains };
    },
    replayEnv: [],
    replayArgs: ['--backend', 'xen', ...(opts.iommu !== undefined ? ['--iommu', opts.iommu ? 'on' : 'off'] : [])],
  };
}

/** The ID column of `xl list`. */
export function parseXlListIds(text: string): number[] {
  const ids: number[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    const id = Number(f[1]);
    if (f.length >= 2 && Number.isInteger(id)) ids.push(id);
  }
  return ids.sort((a, b) => a - b);
}
