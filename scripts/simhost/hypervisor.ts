/**
 * The simulated host's hypervisor, as far as domctl goes: do_domctl written
 * the way xen/common/domctl.c is (4.17 and later), working on the same 144
 * bytes a real hypercall carries and on a domain table that createdomain and
 * destroydomain really change. xenfc's `sim` backend sends its calls here;
 * its model of what Xen must answer is separate code (agent/fuzz/model.ts),
 * so one can find the other wrong.
 *
 * A bug can be planted for the fuzzer to find (XENTEST_SIM_XEN_BUG, see
 * PLANTED_BUGS): one wrong errno for one command.
 */
import path from 'node:path';
import {
  CDF, CDF_KNOWN, CMD, CREATE, DOMCTL_SIZE, DOMID, ERRNO, OFF_CMD, OFF_DOMAIN, OFF_U, OFF_VERSION, domctlInterfaceVersion,
} from '../../agent/fuzz/domctl.js';
import { readJson } from './fsutil.js';
import { domainRoot } from './runners.js';
import { simLayout } from './layout.js';
import type { RunningState } from './types.js';

export const PLANTED_BUGS = {
  /** destroydomain of a domain that does not exist answers EINVAL instead of ESRCH. */
  'destroy-missing-einval': 'destroydomain of a missing domain returns -EINVAL',
  /** pausedomain of a domain created by the caller answers EPERM. */
  'pause-created-eperm': 'pausedomain of a freshly created domain returns -EPERM',
  /** 4.17's getdomaininfo of a reserved id answers ESRCH instead of EINVAL. */
  'getdomaininfo-reserved-esrch': 'getdomaininfo of a reserved id returns -ESRCH',
} as const;
export type PlantedBug = keyof typeof PLANTED_BUGS;

export function plantedBug(env: NodeJS.ProcessEnv = process.env): PlantedBug | null {
  const b = env.XENTEST_SIM_XEN_BUG;
  if (!b) return null;
  if (!(b in PLANTED_BUGS)) {
    throw new Error(`XENTEST_SIM_XEN_BUG=${b} is not a bug the simulated hypervisor knows; it knows ${Object.keys(PLANTED_BUGS).join(', ')}`);
  }
  return b as PlantedBug;
}

interface SimDomain {
  id: number;
  controllerPauseCount: number;
  iommu: boolean;
}

export interface SimHypervisorSetup {
  major: number;
  minor: number;
  /** Domain ids alive now (0 included). */
  domains: readonly number[];
  /** The calling domain. */
  caller: number;
  /** Is the caller the control domain? */
  privileged: boolean;
  iommu: boolean;
  bug: PlantedBug | null;
}

export class SimHypervisor {
  private readonly domains = new Map<number, SimDomain>();
  private readonly version: number;
  /** createdomain's static rover: the last id it handed out. */
  private rover = 0;

  constructor(private readonly setup: SimHypervisorSetup) {
    this.version = domctlInterfaceVersion(setup.major, setup.minor);
    for (const id of setup.domains) this.domains.set(id, { id, controllerPauseCount: 0, iommu: id === 0 && setup.iommu });
    this.rover = Math.max(0, ...setup.domains.filter((id) => id < DOMID.firstReserved));
  }

  callerDomid(): number {
    return this.setup.caller;
  }

  /** Domain ids alive now, ascending. */
  domainIds(): number[] {
    return [...this.domains.keys()].sort((a, b) => a - b);
  }

  /** HYPERVISOR_domctl: 0 or -errno. `readable` false: the guest's pointer cannot be copied from. */
  domctl(buf: Uint8Array, readable: boolean): number {
    // An unprivileged domain is refused before the struct is read (a real Xen 4.17.5, from a Linux 6.1 PV domU).
    if (!this.setup.privileged) return -ERRNO.EPERM;
    if (!readable || buf.byteLength < DOMCTL_SIZE) return -ERRNO.EFAULT;
    const op = new DataView(buf.buffer, buf.byteOffset, DOMCTL_SIZE);
    const cmd = op.getUint32(OFF_CMD, true);
    if (op.getUint32(OFF_VERSION, true) !== this.version) return -ERRNO.EACCES;
    const domid = op.getUint16(OFF_DOMAIN, true);
    const legacyGetinfo = this.setup.major === 4 && this.setup.minor <= 17;

    let d: SimDomain | undefined;
    if (cmd !== CMD.createdomain) {
      d = this.lookup(domid);
      if (!d && !(cmd === CMD.getdomaininfo && legacyGetinfo)) {
        if (cmd === CMD.destroydomain && this.setup.bug === 'destroy-missing-einval') return -ERRNO.EINVAL;
        return -ERRNO.ESRCH;
      }
    }
    switch (cmd) {
      case CMD.createdomain:
        return this.createdomain(op, domid);
      case CMD.destroydomain:
        if (d!.id === this.setup.caller) return -ERRNO.EINVAL;
        this.domains.delete(d!.id);
        return 0;
      case CMD.pausedomain:
        if (d!.id === this.setup.caller) return -ERRNO.EINVAL;
        if (this.setup.bug === 'pause-created-eperm' && d!.id !== 0) return -ERRNO.EPERM;
        if (d!.controllerPauseCount + 1 > 255) return -ERRNO.EOVERFLOW;
        d!.controllerPauseCount += 1;
        return 0;
      case CMD.unpausedomain:
        if (d!.controllerPauseCount - 1 < 0) return -ERRNO.EINVAL;
        d!.controllerPauseCount -= 1;
        return 0;
      case CMD.getdomaininfo: {
        if (!d) {
          if (domid >= DOMID.firstReserved) return this.setup.bug === 'getdomaininfo-reserved-esrch' ? -ERRNO.ESRCH : -ERRNO.EINVAL;
          for (const id of this.domainIds()) {
            if (id >= domid) {
              d = this.domains.get(id);
              break;
            }
          }
          if (!d) return -ERRNO.ESRCH;
        }
        op.setUint16(OFF_DOMAIN, d.id, true);
        // u.getdomaininfo.domain, the first field of the answer.
        op.setUint16(OFF_U, d.id, true);
        return 0;
      }
      default:
        // As a real Xen 4.17.5 answers it (the lab's check).
        return -ERRNO.ENOSYS;
    }
  }

  /** rcu_lock_domain_by_id: reserved ids are never in the table. */
  private lookup(domid: number): SimDomain | undefined {
    return domid >= DOMID.firstReserved ? undefined : this.domains.get(domid);
  }

  private createdomain(op: DataView, requested: number): number {
    let dom = requested;
    if (dom > 0 && dom < DOMID.firstReserved) {
      if (this.domains.has(dom)) return -ERRNO.EEXIST;
    } else {
      let found = -1;
      for (let i = 1, cand = this.rover; i < DOMID.firstReserved; i++) {
        cand = cand + 1 >= DOMID.firstReserved ? 1 : cand + 1;
        if (!this.domains.has(cand)) {
          found = cand;
          break;
        }
      }
      if (found < 0) return -ERRNO.ENOMEM;
      dom = found;
    }
    const u = OFF_U;
    const flags = op.getUint32(u + CREATE.flags, true);
    const iommuOpts = op.getUint32(u + CREATE.iommuOpts, true);
    const grantOpts = op.getUint32(u + CREATE.grantOpts, true);
    // sanitise_domain_config()
    if (flags & ~CDF_KNOWN) return -ERRNO.EINVAL;
    if (grantOpts & ~0xf) return -ERRNO.EINVAL;
    if (op.getUint32(u + CREATE.maxVcpus, true) < 1) return -ERRNO.EINVAL;
    if (flags & CDF.hap && !(flags & CDF.hvm)) return -ERRNO.EINVAL;
    if (flags & CDF.iommu) {
      if (iommuOpts & ~1) return -ERRNO.EINVAL;
      if (!this.setup.iommu) return -ERRNO.EINVAL;
    } else if (iommuOpts) {
      return -ERRNO.EINVAL;
    }
    // grant_table_init(): version 1 or 2.
    const gv = grantOpts & 0xf;
    if (gv < 1 || gv > 2) return -ERRNO.EINVAL;
    if (requested <= 0 || requested >= DOMID.firstReserved) this.rover = dom;
    // Created paused, for its toolstack to unpause.
    this.domains.set(dom, { id: dom, controllerPauseCount: 1, iommu: (flags & CDF.iommu) !== 0 });
    op.setUint16(OFF_DOMAIN, dom, true);
    return 0;
  }
}

/** Which simulated domain a process is in: XENTEST_ROOT is dom0's root or a guest's. */
export function simCaller(simhostDir: string, root: string, running: RunningState): { domid: number; name: string } | null {
  const layout = simLayout(simhostDir);
  const r = path.resolve(root || '/');
  if (r === layout.root) return running.dom0 ? { domid: 0, name: running.dom0.name } : null;
  for (const d of running.domains) {
    if (path.resolve(domainRoot(layout, d.name)) === r) return { domid: d.id, name: d.name };
  }
  return null;
}

/** The hypervisor of the simulated machine in simhostDir, as seen from the domain whose root is `root`. */
export function simHypervisorOfHost(simhostDir: string, root: string, env: NodeJS.ProcessEnv = process.env): SimHypervisor {
  const layout = simLayout(simhostDir);
  const running = readJson<RunningState>(layout.running);
  if (!running || running.kind !== 'xen' || !running.hypervisor || !running.dom0) {
    throw new Error(`the simulated machine ${simhostDir} is not running Xen (${running?.down ?? running?.kind ?? 'no state'})`);
  }
  const me = simCaller(simhostDir, root, running);
  if (!me) throw new Error(`${root} is not the root of any domain running on the simulated machine ${simhostDir}`);
  return new SimHypervisor({
    major: running.hypervisor.major,
    minor: running.hypervisor.minor,
    domains: [0, ...running.domains.map((d) => d.id)],
    caller: me.domid,
    privileged: me.domid === 0,
    iommu: false,
    bug: plantedBug(env),
  });
}
