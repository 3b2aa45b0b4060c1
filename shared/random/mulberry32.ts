/**
 * mulberry32 (Tommy Ettinger, public domain): a small, fast 32-bit PRNG.
 * Deterministic on every machine and Node version, unlike Math.random, so a
 * seed always reproduces the same sequence.
 *
 * The algorithm, exactly (all arithmetic on unsigned 32-bit integers):
 *   state = state + 0x6D2B79F5
 *   t = state
 *   t = (t XOR (t >> 15)) * (t OR 1)
 *   t = t XOR (t + (t XOR (t >> 7)) * (t OR 61))
 *   output = t XOR (t >> 14)
 * with the 32-bit seed as the first state. This is part of xenfc's contract:
 * a seed printed by one machine replays the same calls on any other.
 */
export class Mulberry32 {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** The next output: an integer in [0, 2^32). */
  u32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /**
   * An integer in [0, n) for 0 < n <= 2^21: floor(u32 * n / 2^32). One
   * output per draw whatever n is (no rejection loop), so the sequence of
   * draws never depends on the values drawn; the bias is below n / 2^32.
   */
  below(n: number): number {
    return Math.floor((this.u32() * n) / 4294967296);
  }

  /** A float in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }
}

/** The float sequence of mulberry32(seed), as a function. */
export function mulberry32(seed: number): () => number {
  const r = new Mulberry32(seed);
  return () => r.float();
}
