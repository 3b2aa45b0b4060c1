/**
 * What a finished night did, domain by domain, read back from its results
 * directory (nights/<id>/): the night's journal and status.log (domain.<name>
 * lines: started, finished, aborted), and each domain's collected status.log
 * and per-test keyval (domains/<name>/).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadControlFile } from '../../shared/controlfile/model.js';
import type { JobStatus } from '../../shared/statuslog/entry.js';
import { worseOf } from '../../shared/statuslog/entry.js';
import { readKeyval } from '../../shared/statuslog/keyval.js';
import { parseStatusLog } from '../../shared/statuslog/reader.js';
import type { NightData } from '../pipeline/journal.js';

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

function readText(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

export function summariseNight(dir: string): NightSummary {
  const journal = JSON.parse(readFileSync(join(dir, 'journal.json'), 'utf8')) as NightData;
  const control = loadControlFile(journal.controlFile);
  const nightLines = parseStatusLog(readText(join(dir, 'status.log')));
  const domains = control.domains.map((d): DomainSummary => {
    const name = d.name.value;
    const seen = nightLines.filter((l) => l.operation === `domain.${name}` || l.operation === `domain.${name}.start`);
    let status: JobStatus = seen.length ? 'GOOD' : 'TEST_NA';
    let reason = seen.length ? '' : 'not reached';
    for (const l of seen) {
      const s = l.code.replace(/^END /, '') as JobStatus;
      if (worseOf(status, s) === s) status = s;
      reason = l.message;
    }
    const domDir = join(dir, 'domains', name);
    const tests = parseStatusLog(readText(join(domDir, 'status.log')))
      .filter((l) => l.indent === 0 && l.code.startsWith('END ') && l.operation !== null)
      .map((l): TestSummary => {
        const kv = join(domDir, l.operation as string, 'keyval');
        const keyval = existsSync(kv) ? readKeyval(kv) : new Map();
        const ms = Number(l.fields.get('duration_ms'));
        return {
          name: l.operation as string,
          status: l.code.slice(4) as JobStatus,
          reason: l.message.trim(),
          expectedToFail: keyval.get('expected') === 'fail',
          ...(Number.isFinite(ms) ? { seconds: ms / 1000 } : {}),
        };
      });
    const overall = tests.reduce<JobStatus>((w, t) => worseOf(w, t.status), status === 'TEST_NA' ? 'GOOD' : status);
    return { name, status, reason, tests, overall };
  });
  return {
    night: journal.night,
    dir,
    ...(journal.outcome ? { status: journal.outcome.status, reason: journal.outcome.reason } : {}),
    domains,
  };
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
