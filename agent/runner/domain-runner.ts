/**
 * `xentest run`: the runner in every domain, dom0 included (the paper's
 * xenruntests). See shared/domaindir.ts for the contract with dom0.
 *
 *  1. Wait (polling: the shared directory is NFS, where inotify does not see
 *     what dom0 writes) until <shared>/<hostname>/xentest.conf appears, or
 *     give up: "no work". A runner that has no directory while tonight's
 *     work for another domain waits for a runner says so in its own output
 *     (its hostname is most likely not its section's name); it writes
 *     nothing in their directories.
 *  2. Take runner.lock: one runner per domain.
 *  3. Read the control copy, find the XENVM section whose name is this host.
 *     None (or a control file that cannot be used): an ABORT line and
 *     ERROR.txt in this domain's results, the copy removed, exit 1.
 *  4. Run the tests in order, one step each of the StepRunner, with a
 *     journal (runner.json): a runner that was killed and started again
 *     continues with the first unfinished test; every status.log line is
 *     written exactly once. A failed test does not stop the next one.
 *  5. Sync the results, then remove the control copy: last, because it is
 *     what tells dom0 this domain is done.
 */
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ControlFileInvalid, loadControlFile, type ControlFile, type DomainSpec } from '../../shared/controlfile/model.js';
import { domainDir, type DomainDir } from '../../shared/domaindir.js';
import type { JobStatus } from '../../shared/statuslog/entry.js';
import { formatKeyval } from '../../shared/statuslog/keyval.js';
import { acquireLock, LockBusy, type Lock } from '../lock.js';
import { machinePaths } from '../machine.js';
import { StepRunner } from '../pipeline/runner.js';
import { currentBootId } from '../pipeline/steps/reboot.js';
import { hostnameCandidates, hostnameProblem } from './hostname.js';
import { openRunnerJournal } from './journal.js';
import { detectPrivilege } from './privilege.js';
import { DomainArea, DomainDirRefused } from './shared-area.js';
import { SharedStatusLog } from './statuslog.js';
import { stepNames, testStep, type DomainRun } from './test-step.js';

export const DEFAULT_WAIT_SECONDS = 1800;
const POLL_MS = 500;

export interface RunnerOptions {
  hostname?: string;
  sharedDir: string;
  waitSeconds: number;
  env?: NodeJS.ProcessEnv;
  say?: (line: string) => void;
  /** How long an outage of the shared directory may last (default two minutes). */
  outageLimitMs?: number;
}

export type RunnerOutcome =
  | { kind: 'no-work'; hostname: string; message: string }
  | { kind: 'busy'; hostname: string; message: string }
  | { kind: 'refused'; hostname: string; message: string }
  | { kind: 'no-section'; hostname: string; message: string }
  | { kind: 'finished'; hostname: string; tests: Array<{ name: string; status: JobStatus; reason: string }>; allGood: boolean };

/** A mistake in how the runner was started (a hostname that cannot name a directory). */
export class RunnerUsageError extends Error {
  override readonly name = 'RunnerUsageError';
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * How long a runner with no directory of its own sees work that no runner
 * has taken before it says that its hostname may be wrong: dom0 writes every
 * domain's directory within moments, and runners take their work as soon as
 * they see it, so this only spares a runner that looked in the middle of a
 * dispatch or of another runner's start.
 */
const MISMATCH_GRACE_MS = 5_000;

/**
 * Tonight's dispatch, as a runner with no directory of its own sees it: the
 * domains of the newest night in the shared directory, and those of them
 * whose work no runner has taken yet (the control copy is there, with no
 * runner.json or runner.lock beside it). Only read, never written: they are
 * other domains' directories.
 */
function tonightsDispatch(sharedDir: string, names: string[]): { night: string; domains: string[]; untaken: string[] } | undefined {
  let entries: string[];
  try {
    entries = readdirSync(sharedDir);
  } catch {
    return undefined;
  }
  const byNight = new Map<string, string[]>();
  for (const entry of entries.sort()) {
    if (names.includes(entry) || hostnameProblem(entry) !== undefined) continue;
    let night: string;
    try {
      night = readFileSync(domainDir(sharedDir, entry).night, 'utf8').trim();
    } catch {
      continue; // not a domain's directory, or not readable right now
    }
    if (night !== '') byNight.set(night, [...(byNight.get(night) ?? []), entry]);
  }
  // Night ids are UTC timestamps: the greatest is the newest.
  const night = [...byNight.keys()].sort().pop();
  if (night === undefined) return undefined;
  const domains = byNight.get(night) as string[];
  const untaken = domains.filter((d) => {
    const dir = domainDir(sharedDir, d);
    return existsSync(dir.control) && !existsSync(dir.runnerJournal) && !existsSync(dir.runnerLock);
  });
  return { night, domains, untaken };
}

function mismatchHint(names: string[], seen: { night: string; domains: string[]; untaken: string[] }): string {
  const which = seen.untaken.length === 1 ? seen.untaken[0] : `one of ${seen.untaken.join(', ')}`;
  return (
    `night ${seen.night} dispatched work for ${seen.domains.join(', ')}, none for ${names.join(' or ')}, ` +
    `and no runner has taken the work of ${seen.untaken.join(', ')}: if this domain is ${which}, its hostname does not match the name of its XENVM section; ` +
    `set name = ${names[0]} in that section, change this domain's hostname, or start the runner with --hostname NAME`
  );
}

/** The domain directory to work in, once its control copy is there; after the wait, the mismatch hint if there was one. */
async function waitForWork(
  sharedDir: string,
  names: string[],
  waitSeconds: number,
  say: (l: string) => void,
): Promise<{ dir: DomainDir; hostname: string } | { hint: string | undefined }> {
  const deadline = Date.now() + waitSeconds * 1000;
  let said = false;
  let othersSince: number | undefined;
  let hint: string | undefined;
  for (;;) {
    let ownDir = false;
    for (const name of names) {
      const dir = domainDir(sharedDir, name);
      let isLink = false;
      try {
        isLink = lstatSync(dir.root).isSymbolicLink();
      } catch {
        continue; // not there (yet), or the shared directory is away: keep polling
      }
      ownDir = true;
      if (isLink) throw new DomainDirRefused(`${dir.root} is a symbolic link; a domain's runner writes only into a real directory of its own`);
      if (existsSync(dir.control)) return { dir, hostname: name };
    }
    // No directory of its own while tonight's work for some domain waits for a runner: most likely this one, under another name.
    if (!ownDir && hint === undefined) {
      const seen = tonightsDispatch(sharedDir, names);
      if (!seen || seen.untaken.length === 0) othersSince = undefined;
      else if (othersSince === undefined) othersSince = Date.now();
      else if (Date.now() - othersSince >= MISMATCH_GRACE_MS) {
        hint = mismatchHint(names, seen);
        say(`${hint}; still waiting`);
      }
    }
    if (Date.now() >= deadline) return { hint };
    if (!said) {
      say(`waiting up to ${waitSeconds} s for ${names.map((n) => join(sharedDir, n, 'xentest.conf')).join(' or ')}`);
      said = true;
    }
    await sleep(Math.min(POLL_MS, Math.max(1, deadline - Date.now())));
  }
}

export async function runDomain(options: RunnerOptions): Promise<RunnerOutcome> {
  const env = options.env ?? process.env;
  const say = options.say ?? ((line: string) => process.stdout.write(line + '\n'));
  const names = hostnameCandidates(options.hostname, env);
  for (const n of names) {
    const problem = hostnameProblem(n);
    if (problem && names.length === 1) throw new RunnerUsageError(problem);
  }
  const usable = names.filter((n) => hostnameProblem(n) === undefined);
  if (usable.length === 0) throw new RunnerUsageError(hostnameProblem(names[0] ?? '') ?? 'no hostname');

  let found: Awaited<ReturnType<typeof waitForWork>>;
  try {
    found = await waitForWork(options.sharedDir, usable, options.waitSeconds, say);
  } catch (e) {
    if (e instanceof DomainDirRefused) return { kind: 'refused', hostname: usable[0] as string, message: e.message };
    throw e;
  }
  if ('hint' in found) {
    const message = `no work for ${usable.join(' or ')}: no control file copy in ${options.sharedDir} after ${options.waitSeconds} s`;
    return { kind: 'no-work', hostname: usable[0] as string, message: found.hint ? `${message}; ${found.hint}` : message };
  }
  const { dir, hostname } = found;
  const area = new DomainArea(dir, { say, ...(options.outageLimitMs !== undefined ? { outageLimitMs: options.outageLimitMs } : {}) });

  let lock: Lock;
  try {
    area.checkRoot();
    lock = area.op(`lock ${dir.runnerLock}`, () => acquireLock(dir.runnerLock, `xentest run --hostname ${hostname}`));
  } catch (e) {
    if (e instanceof LockBusy) {
      return { kind: 'busy', hostname, message: `another runner for ${hostname} is running (pid ${e.holder.pid} on ${e.holder.hostname} since ${e.holder.since}); nothing to do` };
    }
    if (e instanceof DomainDirRefused) return { kind: 'refused', hostname, message: e.message };
    throw e;
  }
  try {
    // The runner that held the lock a moment ago may have just finished this work.
    if (!area.op(`look for ${dir.control}`, () => existsSync(dir.control))) {
      return { kind: 'no-work', hostname, message: `no work for ${hostname}: another runner finished it` };
    }
    return await runWithLock(hostname, area, env, say);
  } catch (e) {
    if (e instanceof DomainDirRefused) return { kind: 'refused', hostname, message: e.message };
    throw e;
  } finally {
    try {
      lock.release();
    } catch {
      // The shared directory went away for good: the lock is stale once we are gone.
    }
  }
}

async function runWithLock(hostname: string, area: DomainArea, env: NodeJS.ProcessEnv, say: (l: string) => void): Promise<RunnerOutcome> {
  const dir = area.dir;
  area.mkdir(dir.results);
  let control: ControlFile;
  try {
    control = area.op(`read ${dir.control}`, () => loadControlFile(dir.control));
  } catch (e) {
    if (!(e instanceof ControlFileInvalid)) throw e;
    const problems = e.problems.map((p) => `${p.file}:${p.line}: ${p.message}`).join('; ');
    return giveUp(area, hostname, `the control file copy ${dir.control} cannot be used: ${problems}`);
  }
  const domain = findDomain(control, hostname);
  if (!domain) {
    const known = control.domains.map((d) => `${d.name.value} ([${d.section}])`).join(', ') || 'none';
    return giveUp(
      area,
      hostname,
      `no XENVM section of ${dir.control} has name = ${hostname}; the names it has are: ${known}. Set name = ${hostname} in this domain's section (or start the runner with --hostname NAME).`,
    );
  }

  const privilege = detectPrivilege(env);
  const night = area.op(`read ${dir.night}`, () => (existsSync(dir.night) ? readFileSync(dir.night, 'utf8').trim() : 'unknown'));
  const names = stepNames(domain.tests);
  const { journal, resumed } = openRunnerJournal(area, night, dir.control, names);
  say(`${hostname}: [${domain.section}] of ${dir.control}, night ${night}, ${domain.tests.length} tests; ${privilege.why}${resumed ? '; continuing after an interruption' : ''}`);
  area.writeAtomic(
    join(dir.results, 'keyval'),
    formatKeyval([
      ['hostname', hostname],
      ['domain_section', domain.section],
      ['night', night],
      ['privileged', privilege.kind === 'unprivileged' ? 'no' : privilege.kind === 'privileged' ? 'yes' : 'unknown'],
      ['privilege_source', privilege.why],
      ['tempdir', domain.tempdir.value],
      ['tests', names.join(',')],
    ]),
  );

  const statusLogPath = join(dir.results, 'status.log');
  const statusLog = SharedStatusLog.open(statusLogPath, area);
  const paths = machinePaths(env);
  const run: DomainRun = { hostname, domain, area, privilege, env, bootId: currentBootId(paths.bootIdFile) };
  const steps = domain.tests.map((t, i) => testStep(t, names[i] as string, `${i + 1} of ${names.length}`, run));
  try {
    const runner = new StepRunner(
      { journal, statusLog, statusLogPath, stepLogDir: dir.results, env, bootId: run.bootId, say },
      steps,
      { continueAfterFailure: true },
    );
    await runner.run();
  } finally {
    statusLog.close();
  }
  const tests = journal.data.steps.map((s) => ({ name: s.name, status: s.status ?? 'ERROR', reason: s.reason ?? '' }));
  journal.data.outcome = {
    status: tests.every((t) => t.status === 'GOOD') ? 'GOOD' : 'FAIL',
    reason: tests.filter((t) => t.status !== 'GOOD').map((t) => `${t.name}: ${t.status}`).join(', '),
    finishedAt: new Date().toISOString(),
  };
  journal.save();
  finish(area);
  return { kind: 'finished', hostname, tests, allGood: tests.every((t) => t.status === 'GOOD') };
}

/** The XENVM section whose name is this host (hostnames are case-insensitive). */
function findDomain(control: ControlFile, hostname: string): DomainSpec | undefined {
  const wanted = hostname.toLowerCase();
  return control.domains.find((d) => d.name.value.toLowerCase() === wanted);
}

/** This domain cannot run its work: say why in its results, and mark it done so dom0 does not wait for it. */
function giveUp(area: DomainArea, hostname: string, message: string): RunnerOutcome {
  const dir = area.dir;
  area.writeAtomic(join(dir.results, 'ERROR.txt'), `xentest run on ${hostname}: ${message}\n`);
  const statusLogPath = join(dir.results, 'status.log');
  const statusLog = SharedStatusLog.open(statusLogPath, area);
  try {
    // Once, even if a runner killed before it removed the copy wrote it already.
    const written = area.op(`read ${statusLogPath}`, () => readFileSync(statusLogPath, 'utf8'));
    if (!written.split('\n').some((l) => l.startsWith('ABORT\t----\txentest.run\t'))) {
      statusLog.status('ABORT', null, 'xentest.run', `${hostname}: ${message}`);
    }
  } finally {
    statusLog.close();
  }
  finish(area);
  return { kind: 'no-section', hostname, message };
}

/** Results on the server first, then the control copy goes: that tells dom0 this domain is done. */
function finish(area: DomainArea): void {
  area.syncTree(area.dir.results);
  area.remove(area.dir.control);
}
