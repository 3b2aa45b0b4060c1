/**
 * What every scenario works with: the interface, the state it found, and the
 * safety rules. Every target the suite asks for goes through set(), which
 * refuses one below the floor unless the scenario says the interface must
 * refuse it itself; waiting for the allocation to follow is settle().
 */
import { Mulberry32 } from '../../shared/random/mulberry32.js';
import type { BalloonInterface, BalloonReading, Identity, WriteOutcome } from './interface.js';

export type ScenarioStatus = 'GOOD' | 'FAIL' | 'TEST_NA';

export interface ScenarioResult {
  status: ScenarioStatus;
  reason: string;
}

export const good = (reason: string): ScenarioResult => ({ status: 'GOOD', reason });
export const fail = (reason: string): ScenarioResult => ({ status: 'FAIL', reason });
export const na = (reason: string): ScenarioResult => ({ status: 'TEST_NA', reason });

export const LIBXL_MIN_DOM0_KB = 128 * 1024;

/** A target below the floor was about to be sent: a bug in a scenario, never sent. */
export class BelowFloor extends Error {}

export interface ContextOptions {
  floorKb: number;
  /** How long the allocation may take to follow a target. */
  settleMs: number;
  rapidCount: number;
  rapidMs: number;
  seed: number;
  /** Can the suite run a writer as another user (root, with setpriv)? */
  canSwitchUser: boolean;
  /** The host's RAM (xl info), when this is dom0. */
  hostRamKb: number | null;
  root: string;
  log: (line: string) => void;
}

export class SuiteContext {
  readonly rng: Mulberry32;
  staticMaxKb: number | null = null;
  /** What Xen gives at most (max_pages), read at the start; see BalloonInterface.xenLimitKb. */
  xenLimitKb: number | null = null;

  constructor(
    readonly iface: BalloonInterface,
    /** What the suite found: its target is what every scenario ends with. */
    readonly original: BalloonReading,
    readonly options: ContextOptions,
  ) {
    this.rng = new Mulberry32(options.seed);
  }

  /** The floor, and for dom0 through xl never under libxl's own minimum (LIBXL_MIN_DOM0_MEM, 128 MiB), which it refuses. */
  get floorKb(): number {
    const dom0Xl = this.iface.name === 'xl' && this.iface.ownDomain;
    return dom0Xl ? Math.max(this.options.floorKb, LIBXL_MIN_DOM0_KB) : this.options.floorKb;
  }

  /** How far the allocation may be from its goal and still count as there: a page, or xl list's MiB. */
  get toleranceKb(): number {
    return this.iface.name === 'xl' ? 1024 : 4;
  }

  log(line: string): void {
    this.options.log(line);
  }

  /** Ask for a target; below the floor only where the interface must refuse it (refusalExpected). */
  async set(targetKb: number, opts: { as?: Identity; refusalExpected?: boolean } = {}): Promise<WriteOutcome> {
    if (targetKb < this.floorKb && !opts.refusalExpected) {
      throw new BelowFloor(`a target of ${targetKb} kB is below the floor (${this.floorKb} kB): not sent`);
    }
    return this.iface.request(targetKb, opts.as);
  }

  /**
   * Poll until the allocation is within tolerance of goalKb, or has stayed
   * within 1 MiB for stillMs (what the domain holds moves a little all the
   * time), or settleMs passed. Returns the last reading.
   */
  async settle(goalKb: number, stillMs = 1000): Promise<{ reading: BalloonReading; reached: boolean }> {
    const start = Date.now();
    let last = await this.iface.read();
    let still = { kb: last.currentKb, since: Date.now() };
    for (;;) {
      if (Math.abs(last.currentKb - goalKb) <= this.toleranceKb) return { reading: last, reached: true };
      if (Date.now() - still.since >= stillMs || Date.now() - start >= this.options.settleMs) return { reading: last, reached: false };
      await new Promise((r) => setTimeout(r, 50));
      last = await this.iface.read();
      if (Math.abs(last.currentKb - still.kb) > 1024) still = { kb: last.currentKb, since: Date.now() };
    }
  }

  /** The original target back, and the allocation following it. */
  async restore(): Promise<ScenarioResult | null> {
    const want = this.original.targetKb;
    const r = await this.iface.request(want);
    if (!r.ok) return fail(`could not restore the target of ${want} kB: ${r.code}`);
    const now = await this.iface.read();
    if (now.targetKb !== want) return fail(`restored the target to ${want} kB, but it reads ${now.targetKb} kB`);
    return null;
  }
}
