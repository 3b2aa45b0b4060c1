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
import { containedExistingPath } from '../../shared/contained.js';
import { loadControlFile } from '../../shared/controlfile/model.js';
import { isWorseThan, worseOf, type JobStatus } from '../../shared/statuslog/entry.js';
import { KeyvalFormatError, readKeyval } from '../../shared/statuslog/keyval.js';
import { parseStatusLog } from '../../shared/statuslog/reader.js';
import { parseStatusLogText, StatusLogParseError } from '../../shared/tko/parser.js';
import type { NightData } from '../pipeline/journal.js';
import { RESULTS_STEP_NAMES } from '../pipeline/night.js';
import type { DomainRecord, NightRecord, StepResultRecord, TestRecord } from './record.js';

/** A directory that is not a night's results (no journal.json): the user named the wrong one. */
export class NotANight extends Error {
  override readonly name = 'NotANight';
}

function text(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

/** A test's keyval, <domain>/<subdir>/keyval; the subdir comes from the domain's own log, so it may not lead out of its results. */
function keyvalOf(domDir: string, subdir: string | null): Record<string, string> {
  if (!subdir || subdir === '----') return {};
  const file = containedExistingPath(domDir, join(subdir, 'keyval'));
  if (file === null) return {};
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
    keyval: keyvalOf(domDir, t.subdir),
    iterations: [],
  }));
}

export function loadNightRecord(dir: string): NightRecord {
  const journalFile = join(dir, 'journal.json');
  if (!existsSync(journalFile)) throw new NotANight(`${dir} is not a night's results directory: it has no journal.json`);
  const journal = JSON.parse(readFileSync(journalFile, 'utf8')) as NightData;
  const control = loadControlFile(join(dir, 'control.cfg'));
  const nightLines = parseStatusLog(text(join(dir, 'status.log')));

  const steps: StepResultRecord[] = journal.steps.filter((s) => !RESULTS_STEP_NAMES.includes(s.name)).map((s) => ({
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
  // An unchanged tree tested again: no reboot tonight, the build is the one the last good night booted.
  const running = (output('fetch', 'running') ?? null) as { version?: string; buildId?: string | null } | null;

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
    try {
      return { name, status, reason, tests: domainTests(join(dir, 'domains', name), status) };
    } catch (e) {
      // A domain writes its own results: what it wrote may be what autotest's parser refuses, and that
      // costs this domain its tests, never the night or the other domains theirs.
      if (!(e instanceof StatusLogParseError || e instanceof KeyvalFormatError)) throw e;
      const where = e instanceof KeyvalFormatError ? `${e.file ?? 'keyval'}:${e.line}: ` : '';
      return { name, status: worseOf(status, 'ERROR'), reason: `its results cannot be read: ${where}${e.message}`, tests: [] };
    }
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
      xenVersion: rebootEnd?.fields.get('xen_version') ?? running?.version ?? null,
      xenBuildId: rebootEnd?.fields.get('xen_build_id') ?? running?.buildId ?? null,
      kernel: rebootEnd?.fields.get('kernel') ?? null,
    },
    steps,
    domains,
  };
}
