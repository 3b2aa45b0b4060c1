/**
 * What autotest's status.log parser (TKO, tko/parsers/version_1.py) produces
 * for one test, field for field. See ../../../shared/docs/status-log-v1.md
 * in the project's documents for the semantics.
 */
import type { JobStatus } from '../statuslog/entry.js';

/** A kernel as TKO identifies it: the base release, its patches, and a hash of both. */
export interface KernelId {
  /** The release with a trailing "-autotest" removed; "UNKNOWN" when no kernel was seen. */
  base: string;
  patches: Array<{ spec: string; reference: string; hash: string }>;
  /** TKO's kernel_hash: md5(",".join([base] + patch hashes)), hex. */
  hash: string;
}

export interface TkoTest {
  /** SERVER_JOB, CLIENT_JOB.<n>, boot.<n>, or the test's name (falling back to its subdir). */
  testname: string;
  status: JobStatus;
  reason: string;
  /** None in TKO: null. SERVER_JOB's is the string "----", as in the reference. */
  subdir: string | null;
  kernel: KernelId;
  /** Seconds since the epoch from the START line's timestamp= (null if none). */
  started: number | null;
  /** From the END (or status) line's timestamp= (null if none). */
  finished: number | null;
}
