/**
 * The calls: random, weighted toward valid ones, and reproducible from the
 * seed alone. Every call draws from the PRNG in the same fixed order:
 *
 *   version  below(100) == 0 -> a random version (1%): below(4) picks 0,
 *            all-ones, the right version with its low bit flipped, or u32()
 *   command  below(100) <  80 -> a valid command (80%): below(5) picks one of
 *            createdomain destroydomain pausedomain unpausedomain getdomaininfo;
 *            else a random number: below(4) picks 0, all-ones,
 *            128 + below(128), or u32() (1..127 moved up by 128: see
 *            DEFINED_COMMANDS_END)
 *   domain   below(100) then one more draw (see pickDomain)
 *   buffer   below(200) == 0 -> the struct is not readable (0.5%)
 *   payload  createdomain only: below(10) and one more draw (see createFields)
 *
 * Which domains "exist" comes from the model's table, so the calls after a
 * createdomain aim at the new domain too; the sequence is still a function
 * of the seed and the hypervisor's answers.
 */
import type { Mulberry32 } from '../../shared/random/mulberry32.js';
import { CDF, CMD, COMMAND_NAMES, DEFINED_COMMANDS_END, DOMID, type CreateDomainFields, type DomctlCall } from './domctl.js';

export interface DomainChoices {
  /** Every domain the caller knows of, ascending. */
  known: readonly number[];
  /** The ones this run created, ascending. */
  ours: readonly number[];
  /** The caller's own id, if it knows it. */
  self: number | null;
}

export interface GeneratorStats {
  calls: number;
  randomVersions: number;
  validCommands: number;
}

const RESERVED = [DOMID.self, DOMID.io, DOMID.xen, DOMID.cow, DOMID.invalid, DOMID.idle] as const;

/** A valid PV guest as xl would ask for one (4.17 defaults). */
export const GOOD_CONFIG: Readonly<CreateDomainFields> = {
  ssidref: 0,
  flags: 0,
  iommuOpts: 0,
  maxVcpus: 1,
  maxEvtchnPort: 1023,
  maxGrantFrames: 64,
  maxMaptrackFrames: 1024,
  grantOpts: 1,
};

export class CallGenerator {
  readonly stats: GeneratorStats = { calls: 0, randomVersions: 0, validCommands: 0 };

  constructor(private readonly rng: Mulberry32, private readonly interfaceVersion: number) {}

  next(choices: DomainChoices): DomctlCall {
    const r = this.rng;
    this.stats.calls += 1;
    let interfaceVersion = this.interfaceVersion;
    if (r.below(100) === 0) {
      this.stats.randomVersions += 1;
      switch (r.below(4)) {
        case 0: interfaceVersion = 0; break;
        case 1: interfaceVersion = 0xffffffff; break;
        case 2: interfaceVersion = (this.interfaceVersion ^ 1) >>> 0; break;
        default: interfaceVersion = r.u32();
      }
    }
    let cmd: number;
    if (r.below(100) < 80) {
      this.stats.validCommands += 1;
      cmd = CMD[COMMAND_NAMES[r.below(COMMAND_NAMES.length)]!];
    } else {
      switch (r.below(4)) {
        case 0: cmd = 0; break;
        case 1: cmd = 0xffffffff; break;
        case 2: cmd = DEFINED_COMMANDS_END + r.below(128); break;
        default: {
          const u = r.u32();
          cmd = u > 0 && u < DEFINED_COMMANDS_END ? u + DEFINED_COMMANDS_END : u;
        }
      }
    }
    const domain = this.pickDomain(choices);
    const badBuffer = r.below(200) === 0;
    const call: DomctlCall = { cmd, interfaceVersion, domain, badBuffer };
    if (cmd === CMD.createdomain) call.create = this.createFields();
    return call;
  }

  /**
   * The target, biased toward edges: 15% a known domain, 25% one this run
   * created (none yet: any 16-bit id), 10% domain 0, 5% the caller itself
   * (not known: 0), 15% a reserved id (DOMID_SELF, IO, XEN, COW, INVALID,
   * IDLE), 5% the largest guest id, 5% all-ones, 20% any 16-bit id.
   */
  private pickDomain(c: DomainChoices): number {
    const r = this.rng;
    const band = r.below(100);
    const pick = r.u32();
    if (band < 15) return c.known.length ? c.known[pick % c.known.length]! : 0;
    if (band < 40) return c.ours.length ? c.ours[pick % c.ours.length]! : pick & 0xffff;
    if (band < 50) return 0;
    if (band < 55) return c.self ?? 0;
    if (band < 70) return RESERVED[pick % RESERVED.length]!;
    if (band < 75) return DOMID.maxGuest;
    if (band < 80) return DOMID.allOnes;
    return pick & 0xffff;
  }

  /**
   * 60% a good PV configuration; else exactly one field Xen refuses: an
   * unknown flag bit, max_vcpus 0, hap without hvm, iommu_opts without the
   * iommu flag.
   */
  private createFields(): CreateDomainFields {
    const r = this.rng;
    const shape = r.below(10);
    const extra = r.u32();
    const c: CreateDomainFields = { ...GOOD_CONFIG };
    switch (shape) {
      case 6: c.flags = (1 << (8 + (extra % 24))) >>> 0; break;
      case 7: c.maxVcpus = 0; break;
      case 8: c.flags = CDF.hap; break;
      case 9: c.iommuOpts = (1 << (extra % 32)) >>> 0; break;
      default: break;
    }
    return c;
  }
}
