/**
 * One night's results as data: what the results database stores, what the
 * exports (JUnit, KCIDB) and the report are made from. It is read from the
 * night's files (nights/<id>/: journal.json, status.log, domains/<name>/...),
 * which stay the truth: everything here can be rebuilt from them.
 */
import type { JobStatus } from '../../shared/statuslog/entry.js';
import type { KernelId } from '../../shared/tko/types.js';

export type { KernelId };

/** A test as the status.log parser returns it (TKO's test object). */
export interface TestRecord {
  /** The test's name: TKO's testname (SERVER_JOB, CLIENT_JOB.0, boot.0 and named tests). */
  name: string;
  status: JobStatus;
  reason: string;
  subdir: string | null;
  kernel: KernelId;
  /** Seconds since the epoch, from the START and END lines (null when the log has none). */
  started: number | null;
  finished: number | null;
  /** The test's keyval (<subdir>/keyval), values as written. */
  keyval: Record<string, string>;
  /** Perf figures from <subdir>/results/keyval, one map per iteration. */
  iterations: Array<{ attr: Record<string, string>; perf: Record<string, number> }>;
}

/** A step of the night's pipeline (fetch, build.xen, reboot, domains.wait, ...). */
export interface StepResultRecord {
  name: string;
  status: JobStatus | null;
  reason: string;
  started: string | null;
  finished: string | null;
  durationMs: number | null;
}

export interface DomainRecord {
  /** The XENVM section's name: the domain's hostname. */
  name: string;
  /** How dom0 saw it: domain.<name> / domain.<name>.start lines of the night's status.log. */
  status: JobStatus;
  reason: string;
  /** The domain's own status.log, parsed, and each test's keyvals. */
  tests: TestRecord[];
}

export interface NightRecord {
  /** The machine (dom0's hostname): nights are compared per machine and domain. */
  machine: string;
  night: string;
  /** Where the night's files are (nights/<id>/). */
  dir: string;
  started: string;
  finished: string | null;
  status: JobStatus | null;
  reason: string;
  /** What was built: tree identities (sha256:..., git:...) and the booted hypervisor. */
  build: { xenTree: string | null; linuxTree: string | null; xenVersion: string | null; xenBuildId: string | null; kernel: string | null };
  steps: StepResultRecord[];
  domains: DomainRecord[];
}
