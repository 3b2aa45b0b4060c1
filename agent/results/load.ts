/**
 * A night's results as data (NightRecord), read from its files alone:
 * nights/<id>/journal.json (steps, outcome, machine), status.log (how dom0
 * saw each domain), and domains/<name>/ (each domain's status.log, parsed
 * as autotest's TKO parser parses it, and its tests' keyvals). The database,
 * the exports and the report are all made from this, so any of them can be
 * rebuilt from the files.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { loadControlFile } from '../../shared/controlfile/model.js';
import { isWorseThan, worseOf, type JobStatus } from '../../shared/statuslog/entry.js';
import { readKeyval } from '../../shared/statuslog/keyval.js';
import { parseStatusLog } from '../../shared/statuslog/reader.js';
import { parseStatusLogText } from '../../shared/tko/parser.js';
import type { NightData } from '../pipeline/journal.js';
import type { DomainRecord, NightRecord, StepResultRecord, TestRecord } from './record.js';

/** A directory that is not a night's results (no journal.json): the user named the wrong one. */
export class NotANight extends Error {
  override readonly name = 'NotANight';
}

function text(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

function keyvalOf(file: string): Record<string, string> {
  if (!existsSync(file)) return {};
  return Object.fromEntries([...readKeyval(file)].map(([k, v]) => [k, String(v)]));
}

/** `finished`: how dom0 saw the domain end, which is SERVER_JOB's status (autoserv's exit, for autotest). */
function domainTests(domDir: string, finished: JobStatus): TestRecord[] {
  const log = join(domDir, 'status.log');
  if (!existsSync(log)) return [];
  return parseStatusLogText(readFileSync(log, 'utf8'), { file: log, serverJobStatus: finished }).map((t) => ({
    name: t.testname,
    status: t.status,
    reason: t.reason,
    subdir: t.subdir,
    kernel: t.kernel,
    started: t.started,
    finished: t.finished,
    keyval: t.subdir && t.subdir !== '----' ? keyvalOf(join(domDir, t.subdir, 'keyval')) : {},
    iterations: [],
  }));
}

export function loadNightRecord(dir: string): NightRecord {
  const journalFile = join(dir, 'journal.json');
  if (!existsSync(journalFile)) throw new NotANight(`${dir} is not a night's results directory: it has no journal.json`);
  const journal = JSON.parse(readFileSync(journalFile, 'utf8')) as NightData;
  const control = loadControlFile(join(dir, 'control.cfg'));
  const nightLines = parseStatusLog(text(join(dir, 'status.log')));

  const steps: StepResultRecord[] = journal.steps.map((s) => ({
    name: s.name,
    status: s.status ?? null,
    reason: s.reason ?? '',
    started: s.startedAt ?? null,
    finished: s.finishedAt ?? null,
    durationMs: s.durationMs ?? null,
  }));
  const output = (step: string, key: string): unknown => journal.steps.find((s) => s.name === step)?.outputs[key];
  const identities = (output('fetch', 'identities') ?? {}) as Record<string, string>;
  const rebootEnd = nightLines.find((l) => l.code.startsWith('END ') && l.operation === 'reboot');

  const domains: DomainRecord[] = control.domains.map((d) => {
    const name = d.name.value;
    const seen = nightLines.filter((l) => l.operation === `domain.${name}` || l.operation === `domain.${name}.start`);
    let status: JobStatus = 'GOOD';
    let reason = '';
    for (const l of seen) {
      const s = l.code.replace(/^END /, '') as JobStatus;
      // The reason of the worst line (the last of equals): "finished", "did not start", "did not finish".
      if (!isWorseThan(status, s)) reason = l.message;
      status = worseOf(status, s);
    }
    if (seen.length === 0) [status, reason] = ['TEST_NA', 'not reached: the night ended before the domains'];
    return { name, status, reason, tests: domainTests(join(dir, 'domains', name), status) };
  });

  return {
    machine: journal.machine ?? 'unknown',
    night: journal.night ?? basename(dir),
    dir,
    started: journal.createdAt,
    finished: journal.outcome?.finishedAt ?? null,
    status: journal.outcome?.status ?? null,
    reason: journal.outcome?.reason ?? '',
    build: {
      xenTree: identities.xen ?? null,
      linuxTree: identities.linux ?? null,
      xenVersion: rebootEnd?.fields.get('xen_version') ?? null,
      xenBuildId: rebootEnd?.fields.get('xen_build_id') ?? null,
      kernel: rebootEnd?.fields.get('kernel') ?? null,
    },
    steps,
    domains,
  };
}
