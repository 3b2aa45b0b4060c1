/**
 * What a finished night did, domain by domain, for a terminal: the night's
 * results (load.ts) without TKO's job-level entries.
 */
import type { JobStatus } from '../../shared/statuslog/entry.js';
import { worseOf } from '../../shared/statuslog/entry.js';
import { loadNightRecord } from './load.js';

export interface TestSummary {
  name: string;
  status: JobStatus;
  reason: string;
  /** The test had to fail here (unprivileged = fail in a domU). */
  expectedToFail: boolean;
  seconds?: number;
}

export interface DomainSummary {
  name: string;
  /** How dom0 saw the domain: started, finished, or not (domain.<name>[.start] lines). */
  status: JobStatus;
  reason: string;
  tests: TestSummary[];
  /** The domain's own worst result: its tests and how dom0 saw it. */
  overall: JobStatus;
}

export interface NightSummary {
  night: string;
  dir: string;
  status?: JobStatus;
  reason?: string;
  domains: DomainSummary[];
}

/** The job-level entries TKO adds (SERVER_JOB, CLIENT_JOB.<n>) are not tests a person ran. */
function isJobEntry(name: string): boolean {
  return name === 'SERVER_JOB' || /^CLIENT_JOB\.\d+$/.test(name);
}

export function summariseNight(dir: string): NightSummary {
  const night = loadNightRecord(dir);
  const domains = night.domains.map((d): DomainSummary => {
    const tests = d.tests
      .filter((t) => !isJobEntry(t.name))
      .map((t): TestSummary => {
        const seconds = Number(t.keyval.total_seconds);
        return {
          name: t.name,
          status: t.status,
          reason: t.reason,
          expectedToFail: t.keyval.expected === 'fail',
          ...(t.keyval.total_seconds !== undefined && Number.isFinite(seconds) ? { seconds } : {}),
        };
      });
    const overall = tests.reduce<JobStatus>((w, t) => worseOf(w, t.status), d.status === 'TEST_NA' ? 'GOOD' : d.status);
    return { name: d.name, status: d.status, reason: d.reason, tests, overall };
  });
  return { night: night.night, dir, ...(night.status ? { status: night.status } : {}), ...(night.reason ? { reason: night.reason } : {}), domains };
}

/** The summary as a person reads it on a terminal. */
export function formatSummary(s: NightSummary): string {
  const out: string[] = [];
  out.push(`night ${s.night}: ${s.status ?? 'not finished'}${s.reason ? ` (${s.reason})` : ''}`);
  const width = Math.max(8, ...s.domains.flatMap((d) => d.tests.map((t) => t.name.length)));
  for (const d of s.domains) {
    const counts = new Map<string, number>();
    for (const t of d.tests) counts.set(t.status, (counts.get(t.status) ?? 0) + 1);
    const tally = [...counts].map(([st, n]) => `${n} ${st}`).join(', ') || 'no test results';
    out.push(`  ${d.name}: ${d.overall}, ${d.tests.length} test${d.tests.length === 1 ? '' : 's'}: ${tally}`);
    if (d.status !== 'GOOD') out.push(`    dom0 says: ${d.status} ${d.reason}`);
    for (const t of d.tests) {
      const time = t.seconds !== undefined ? ` (${t.seconds.toFixed(1)} s)` : '';
      out.push(`    ${t.name.padEnd(width)}  ${t.status.padEnd(5)}  ${t.reason}${time}`);
    }
  }
  out.push(`results: ${s.dir}`);
  return out.join('\n') + '\n';
}
