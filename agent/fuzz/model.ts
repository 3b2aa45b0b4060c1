/**
 * What Xen must answer: a model of do_domctl's order of checks
 * (xen/common/domctl.c, 4.17 and later; xen-facts.md), and of the five
 * commands the generator aims at. The fuzzer compares every answer with it.
 *
 * The order, for every call:
 *   0. the caller is not privileged                          -> EPERM
 *      before anything else, a NULL struct and a wrong version included:
 *      what a Linux 6.1 PV domU is answered on a real Xen 4.17.5 (the lab's
 *      check, scripts/lab/lab check); do_domctl's own order below is what
 *      dom0 sees
 *   1. the copy of the struct from the guest fails          -> EFAULT
 *   2. interface_version is not this Xen's                  -> EACCES
 *   3. the target is looked up before dispatch (every command but
 *      createdomain, and in 4.17 getdomaininfo): missing     -> ESRCH
 *      (rcu_lock_domain_by_id: reserved ids, DOMID_SELF included, never exist)
 *   4. (the caller is not privileged: XSM's dummy policy     -> EPERM;
 *      step 0 has answered it already)
 *   5. dispatch: an unknown command -> ENOSYS (what a real Xen 4.17.5
 *      without an IOMMU answers, seen in the lab: scripts/lab/lab check);
 *      pausing or destroying yourself -> EINVAL; ...
 *
 * What the model knows of the domain table is what the caller can know: dom0
 * lists every domain; a guest knows only dom0 and itself (it is refused
 * every call anyway).
 */
import { CDF, CDF_KNOWN, CMD, DOMID, ERRNO, commandName, type DomctlCall } from './domctl.js';

export interface XenProfile {
  major: number;
  minor: number;
  interfaceVersion: number;
  /** Does the host have an IOMMU in use? null: not known (unknown commands may be ENOSYS or EOPNOTSUPP). */
  iommu: boolean | null;
}

export interface KnownDomain {
  id: number;
  /** Created by this run: the only domains it may pause, unpause or destroy by default. */
  ours: boolean;
  /** controller_pause_count: a domain starts at 1 when created (paused for its toolstack), 0 when running. */
  pauseCount: number;
  /** is_iommu_enabled(d); null when not known. */
  iommu: boolean | null;
}

export interface Caller {
  /** The caller's own domain id; null when it cannot tell (a guest without xenstore tools). */
  domid: number | null;
  privileged: boolean;
}

export interface Expectation {
  /** Acceptable answers (0 or a positive errno), the likeliest first. */
  errnos: number[];
  /** On success, the domain id Xen must copy back (getdomaininfo); undefined when not predicted. */
  domain?: number;
  why: string;
}

/** The domain table the caller knows, and the rules of Xen applied to it. */
export class DomctlModel {
  private readonly domains = new Map<number, KnownDomain>();
  private sortedIds: number[] | null = null;
  private oursCache: number[] | null = null;

  /**
   * complete: the caller saw the whole table (dom0); otherwise an id it does
   * not know may or may not exist.
   */
  constructor(readonly profile: XenProfile, readonly caller: Caller, initial: readonly KnownDomain[], readonly complete: boolean) {
    for (const d of initial) this.domains.set(d.id, { ...d });
  }

  /** Known ids, ascending. */
  knownIds(): readonly number[] {
    this.sortedIds ??= [...this.domains.keys()].sort((a, b) => a - b);
    return this.sortedIds;
  }

  /** Ids this run created and has not destroyed, ascending. */
  oursIds(): readonly number[] {
    this.oursCache ??= this.knownIds().filter((id) => this.domains.get(id)?.ours);
    return this.oursCache;
  }

  domain(id: number): KnownDomain | undefined {
    return this.domains.get(id);
  }

  /** true: exists; false: does not; null: the caller cannot know. */
  exists(id: number): boolean | null {
    if (id >= DOMID.firstReserved) return false;
    if (this.domains.has(id)) return true;
    return this.complete ? false : null;
  }

  expect(call: DomctlCall): Expectation {
    if (!this.caller.privileged) return { errnos: [ERRNO.EPERM], why: 'the caller is not privileged (refused before the struct is read)' };
    if (call.badBuffer) return { errnos: [ERRNO.EFAULT], why: 'the hypervisor cannot read the struct' };
    if (call.interfaceVersion >>> 0 !== this.profile.interfaceVersion) {
      return { errnos: [ERRNO.EACCES], why: `interface_version is not 0x${this.profile.interfaceVersion.toString(16)}` };
    }
    const cmd = call.cmd >>> 0;
    const dom = call.domain;
    const looksUp = cmd !== CMD.createdomain && !(cmd === CMD.getdomaininfo && this.nextHigherGetdomaininfo());
    if (looksUp) {
      const e = this.exists(dom);
      if (e === false) return { errnos: [ERRNO.ESRCH], why: `no domain ${dom}` };
    }
    switch (commandName(cmd)) {
      case 'createdomain':
        return this.expectCreate(call);
      case 'destroydomain':
        if (dom === this.caller.domid) return { errnos: [ERRNO.EINVAL], why: 'a domain cannot destroy itself' };
        return { errnos: [0], why: `domain ${dom} is destroyed` };
      case 'pausedomain': {
        if (dom === this.caller.domid) return { errnos: [ERRNO.EINVAL], why: 'a domain cannot pause itself' };
        const count = this.domains.get(dom)?.pauseCount ?? 0;
        if (count + 1 > 255) return { errnos: [ERRNO.EOVERFLOW], why: `domain ${dom} is paused 255 times already` };
        return { errnos: [0], why: `domain ${dom} is paused (count ${count + 1})` };
      }
      case 'unpausedomain': {
        const count = this.domains.get(dom)?.pauseCount ?? 0;
        if (count - 1 < 0) return { errnos: [ERRNO.EINVAL], why: `domain ${dom} is not paused by its toolstack` };
        return { errnos: [0], why: `domain ${dom} is unpaused (count ${count - 1})` };
      }
      case 'getdomaininfo':
        return this.expectGetdomaininfo(dom);
      default:
        return { errnos: [ERRNO.ENOSYS], why: 'unknown command' };
    }
  }

  /** 4.17 returns the next domain at or above the id asked for; 4.18 and later look it up like any command. */
  private nextHigherGetdomaininfo(): boolean {
    return this.profile.major === 4 && this.profile.minor <= 17;
  }

  private expectGetdomaininfo(dom: number): Expectation {
    if (!this.nextHigherGetdomaininfo()) return { errnos: [0], domain: dom, why: `domain ${dom}'s information` };
    if (dom >= DOMID.firstReserved) return { errnos: [ERRNO.EINVAL], why: `${dom} is a reserved id` };
    const next = this.knownIds().find((id) => id >= dom);
    if (next === undefined) return { errnos: [ERRNO.ESRCH], why: `no domain at or above ${dom}` };
    return { errnos: [0], domain: next, why: `domain ${next}'s information (the first at or above ${dom})` };
  }

  private expectCreate(call: DomctlCall): Expectation {
    const dom = call.domain;
    if (dom > 0 && dom < DOMID.firstReserved) {
      if (this.domains.has(dom)) return { errnos: [ERRNO.EEXIST], why: `domain ${dom} exists` };
    } else if (this.complete && this.knownIds().filter((id) => id > 0 && id < DOMID.firstReserved).length >= DOMID.maxGuest) {
      return { errnos: [ERRNO.ENOMEM], why: 'every domain id is taken' };
    }
    const c = call.create;
    if (!c) return { errnos: [ERRNO.EINVAL], why: 'no configuration' };
    const bad = invalidConfig(c.flags, c.maxVcpus, c.iommuOpts, c.grantOpts, this.profile.iommu);
    if (bad) return { errnos: [ERRNO.EINVAL], why: bad };
    const where = dom > 0 && dom < DOMID.firstReserved ? `as domain ${dom}` : 'with the next free id';
    return { errnos: [0], why: `a PV domain is created ${where}` };
  }

  /**
   * Take the domain table as it is listed now (complete models only): a
   * toolstack started or ended domains during the run. What changed, or
   * null if nothing did. A domain that appeared is not this run's.
   */
  resync(ids: readonly number[]): { appeared: number[]; gone: number[] } | null {
    const now = new Set(ids.filter((id) => id < DOMID.firstReserved));
    const appeared = [...now].filter((id) => !this.domains.has(id)).sort((a, b) => a - b);
    const gone = this.knownIds().filter((id) => !now.has(id));
    if (appeared.length === 0 && gone.length === 0) return null;
    for (const id of gone) this.domains.delete(id);
    for (const id of appeared) this.domains.set(id, { id, ours: false, pauseCount: 0, iommu: null });
    this.changed();
    return { appeared, gone };
  }

  /** Record what Xen did (its real answer, so one wrong answer does not make every later call wrong). */
  apply(call: DomctlCall, errno: number, returnedDomain: number): void {
    if (errno !== 0 || call.badBuffer) return;
    const dom = call.domain;
    switch (commandName(call.cmd >>> 0)) {
      case 'createdomain': {
        const iommu = ((call.create?.flags ?? 0) & CDF.iommu) !== 0;
        this.domains.set(returnedDomain, { id: returnedDomain, ours: true, pauseCount: 1, iommu });
        this.changed();
        break;
      }
      case 'destroydomain':
        this.domains.delete(dom);
        this.changed();
        break;
      case 'pausedomain': {
        const d = this.domains.get(dom);
        if (d) d.pauseCount += 1;
        break;
      }
      case 'unpausedomain': {
        const d = this.domains.get(dom);
        if (d) d.pauseCount = Math.max(0, d.pauseCount - 1);
        break;
      }
      default:
        break;
    }
  }

  private changed(): void {
    this.sortedIds = null;
    this.oursCache = null;
  }
}

/**
 * sanitise_domain_config()'s refusals that the generator provokes, in Xen's
 * order; null if the configuration is accepted.
 */
export function invalidConfig(flags: number, maxVcpus: number, iommuOpts: number, grantOpts: number, hostIommu: boolean | null): string | null {
  if ((flags >>> 0) & ~CDF_KNOWN) return `unknown flags 0x${((flags >>> 0) & ~CDF_KNOWN >>> 0).toString(16)}`;
  if ((grantOpts >>> 0) & ~0xf) return 'unknown grant_opts bits';
  if ((grantOpts & 0xf) < 1 || (grantOpts & 0xf) > 2) return `grant table version ${grantOpts & 0xf}`;
  if (maxVcpus >>> 0 < 1) return 'max_vcpus is 0';
  if (flags & CDF.hap && !(flags & CDF.hvm)) return 'hap without hvm';
  if (flags & CDF.iommu) {
    if (iommuOpts & ~1) return 'unknown iommu_opts';
    if (hostIommu === false) return 'iommu asked for, the host has none';
  } else if (iommuOpts) {
    return 'iommu_opts without the iommu flag';
  }
  return null;
}
