/**
 * The domain side of a night, from dom0 (the paper's xenstartdoms):
 *
 *  domains.dispatch  one directory per domain in shared_dir, with the night's
 *                    id and a copy of the control file (written last)
 *  domains.start     `xl create -f CONFIG` for each domain with a config, and
 *                    wait until `xl list` shows it; dom0's own runner is
 *                    started too. A domain that does not start is recorded
 *                    with xl's error; the others go on.
 *  domains.wait      each domain is done when its runner removed the control
 *                    file copy; one that is not done by its timeout is ABORT,
 *                    with what its directory shows of its runner
 *  domains.collect   every domain's results into the night's directory, and
 *                    the guests this night started are destroyed
 *
 * A domain's directory that cannot be read, or is missing (dispatch made it),
 * means the shared directory is away for a moment: wait and collect wait it
 * out, they never take it for a finished domain or one without results.
 *
 * The shared directory is polled, never watched: it is normally NFS, where
 * inotify does not see what other machines write.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../../../shared/atomic.js';
import type { DomainSpec } from '../../../shared/controlfile/model.js';
import { domainDir, isUnavailableError, type DomainDir } from '../../../shared/domaindir.js';
import { describeResult, formatDuration, lastOutputLine, shellQuote } from '../../../shared/process/run.js';
import { followStatusLog, type StatusLogFollower } from '../../../shared/tko/follow.js';
import { parseXlInfo } from '../../xen/identity.js';
import type { NightData } from '../journal.js';
import type { Night } from '../night.js';
import type { Step, StepContext, StepResult } from '../runner.js';

const XL_TIMEOUT_MS = 120_000;
const START_TIMEOUT_MS = 120_000;
const POLL_MS = 500;
const SHARED_DIR_WAIT_MS = 120_000;
/** How long domains.collect waits out an outage of the shared directory before it gives up on the results still to copy. */
export const COLLECT_OUTAGE_LIMIT_MS = 120_000;
const COLLECT_FIRST_DELAY_MS = 250;
const COLLECT_MAX_DELAY_MS = 5_000;
const XENTEST_BIN = fileURLToPath(new URL('../../../../bin/xentest.js', import.meta.url));

function sharedDir(night: Night): string {
  return night.control.preferences.sharedDir.value;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The shared directory is a mount that may come up after the resume unit
 * starts, or be away for a moment: wait for it (bounded) rather than create it,
 * which would put the domains' work on dom0's own disk, where no guest sees it.
 * Returns why the night cannot go on, or undefined.
 */
async function waitForSharedDir(dir: string, ctx: StepContext): Promise<string | undefined> {
  const deadline = Date.now() + SHARED_DIR_WAIT_MS;
  let said = false;
  for (;;) {
    try {
      if (statSync(dir).isDirectory()) return undefined;
      return `shared_dir ${dir} is not a directory`;
    } catch (e) {
      if (Date.now() >= deadline) {
        return `shared_dir ${dir} is not there (${(e as NodeJS.ErrnoException).code}) after ${SHARED_DIR_WAIT_MS / 1000} s: is the shared directory (NFS) mounted in dom0?`;
      }
      if (!said) ctx.log(`waiting up to ${SHARED_DIR_WAIT_MS / 1000} s for the shared directory ${dir} (${(e as NodeJS.ErrnoException).code})`);
      said = true;
      await sleep(POLL_MS);
    }
  }
}

export function dispatchStep(night: Night): Step {
  return {
    name: 'domains.dispatch',
    async run(ctx): Promise<StepResult> {
      const control = readFileSync(night.journal.data.controlFile);
      const missing = await waitForSharedDir(sharedDir(night), ctx);
      if (missing) return { status: 'ERROR', reason: missing };
      for (const d of night.control.domains) {
        const dir = domainDir(sharedDir(night), d.name.value);
        // Entered again after an interruption: a domain already given tonight's work keeps it (its runner may
        // have started, or even finished, meanwhile). Given means the control copy went in after the night's id:
        // it is there, or the runner has been at it since (its journal or results). An interruption between the
        // two left the id alone, and the domain still needs its work.
        const given = existsSync(dir.night) && readFileSync(dir.night, 'utf8').trim() === night.id;
        if (given && (existsSync(dir.control) || existsSync(dir.runnerJournal) || existsSync(dir.results))) continue;
        if (existsSync(dir.root) && lstatSync(dir.root).isSymbolicLink()) {
          return { status: 'ERROR', reason: `${dir.root} is a symbolic link; a domain's directory must be a real directory` };
        }
        // Last night's results were collected into last night's directory.
        for (const old of [dir.control, dir.results, dir.runnerJournal, dir.night]) rmSync(old, { recursive: true, force: true });
        // Not recursive: were the shared directory to go away now, a local tree must not take its place.
        if (!existsSync(dir.root)) mkdirSync(dir.root);
        writeFileAtomic(dir.night, night.id + '\n');
        ctx.checkpoint('middle');
        writeFileAtomic(dir.control, control);
        ctx.log(`${d.name.value}: ${dir.control}`);
      }
      return { status: 'GOOD', reason: `${night.control.domains.length} domains in ${sharedDir(night)}` };
    },
  };
}

/** The hostname of dom0, as the hypervisor knows it. */
async function dom0Hostname(ctx: StepContext): Promise<string | undefined> {
  const r = await ctx.run('xl info', { cwd: '/', timeoutMs: XL_TIMEOUT_MS });
  return r.exitStatus === 0 ? parseXlInfo(r.tail).get('host') : undefined;
}

/**
 * dom0's runner, started here as its unit would be (a second one for the same domain just exits). Dispatch has
 * written the control copy already, so it does not wait: one that finds the work taken, or already done by the
 * runner its unit started at boot, exits at once instead of idling for the default half hour.
 */
function startLocalRunner(night: Night, d: DomainSpec): void {
  const log = openSync(join(night.dir, 'steps', `runner-${d.name.value}.log`), 'a');
  const child = spawn(process.execPath, [XENTEST_BIN, 'run', '--hostname', d.name.value, '--shared-dir', sharedDir(night), '--wait', '0'], {
    cwd: '/',
    env: night.env,
    detached: true,
    stdio: ['ignore', log, log],
  });
  child.unref();
}

async function waitUntilListed(ctx: StepContext, name: string): Promise<string | undefined> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    const r = await ctx.run(`xl list ${shellQuote(name)}`, { cwd: '/', timeoutMs: XL_TIMEOUT_MS });
    if (r.exitStatus === 0) return undefined;
    last = lastOutputLine(r);
    await sleep(POLL_MS);
  }
  return `not running ${START_TIMEOUT_MS / 1000} s after xl create: ${last}`;
}

export function startDomainsStep(night: Night): Step {
  return {
    name: 'domains.start',
    async run(ctx): Promise<StepResult> {
      const host = await dom0Hostname(ctx);
      if (night.control.domains.every((d) => !d.config)) ctx.checkpoint('middle');
      const failed: { [name: string]: string } = {};
      const created: string[] = (ctx.record.outputs.created as string[] | undefined) ?? [];
      for (const d of night.control.domains) {
        const name = d.name.value;
        if (!d.config) {
          if (name === host) startLocalRunner(night, d);
          else ctx.log(`${name}: no config; started elsewhere, its runner runs there`);
          continue;
        }
        if (!created.includes(name)) {
          const r = await ctx.run(`xl create -f ${shellQuote(d.config.value)}`, { cwd: '/', timeoutMs: XL_TIMEOUT_MS });
          if (r.exitStatus !== 0) {
            failed[name] = `xl create -f ${d.config.value} ${describeResult(r)}: ${lastOutputLine(r)}`;
            ctx.statusOnce('ERROR', `domain.${name}.start`, failed[name] as string);
            continue;
          }
          created.push(name);
          ctx.saveOutputs({ created });
          ctx.checkpoint('middle');
        }
        const notRunning = await waitUntilListed(ctx, name);
        if (notRunning) {
          failed[name] = notRunning;
          ctx.statusOnce('ERROR', `domain.${name}.start`, notRunning);
        }
      }
      const startedAt = (ctx.record.outputs.startedAt as string | undefined) ?? new Date().toISOString();
      const failures = Object.entries(failed);
      return {
        // A domain that does not start is its own failure, not the night's: the others go on.
        status: failures.length ? 'WARN' : 'GOOD',
        reason: failures.length ? failures.map(([n, why]) => `${n}: ${why}`).join('; ') : `${created.length} guests started`,
        outputs: { created, failed, startedAt },
      };
    },
  };
}

export function waitDomainsStep(night: Night): Step {
  return {
    name: 'domains.wait',
    async run(ctx): Promise<StepResult> {
      const failed = night.journal.output<{ [n: string]: string }>('domains.start', 'failed');
      const since = Date.parse(night.journal.output<string>('domains.start', 'startedAt'));
      const pending = new Map(night.control.domains.filter((d) => !(d.name.value in failed)).map((d) => [d.name.value, d]));
      ctx.log(`waiting for ${[...pending.keys()].join(', ') || 'no domain'}`);
      const followers = [...pending.keys()].map((name) => followDomainLog(night, name, ctx));
      let aborted: string[];
      try {
        aborted = await waitForDomains(night, ctx, pending, since);
      } finally {
        // Progress only: the results are read from the collected files, whatever the followers saw.
        await Promise.allSettled(followers.map((f) => f.close()));
      }
      return {
        status: aborted.length ? 'WARN' : 'GOOD',
        reason: aborted.length ? `did not finish: ${aborted.join(', ')}` : 'every domain finished',
        outputs: { aborted },
      };
    },
  };
}

/** Polls until every pending domain has finished (its control copy gone) or passed its timeout; returns those that did not finish. */
async function waitForDomains(night: Night, ctx: StepContext, pending: Map<string, DomainSpec>, since: number): Promise<string[]> {
  const aborted: string[] = [];
  const outages = new Map<string, number>();
  let polledOnce = false;
  while (pending.size > 0) {
    for (const [name, d] of pending) {
      const dir = domainDir(sharedDir(night), name);
      const look = lookAt(dir, sharedDir(night));
      if (look.kind === 'listed') {
        const outage = outages.get(name);
        if (outage !== undefined) ctx.log(`${name}: ${dir.root} is back after ${formatDuration(Date.now() - outage)}`);
        outages.delete(name);
        if (!look.entries.includes(basename(dir.control))) {
          pending.delete(name);
          ctx.statusOnce('GOOD', `domain.${name}`, `finished its tests${runnerOutcome(dir)}`);
          continue;
        }
      } else if (!outages.has(name)) {
        outages.set(name, Date.now());
        ctx.log(`${name}: ${look.why}; the shared directory may be briefly unavailable: still waiting (a missing directory is not a finished domain)`);
      }
      if (Date.now() > since + d.timeoutSeconds * 1000) {
        pending.delete(name);
        aborted.push(name);
        ctx.statusOnce('ABORT', `domain.${name}`, whyNotFinished(d, dir, look, outages.get(name)));
      }
    }
    if (!polledOnce) ctx.checkpoint('middle');
    polledOnce = true;
    if (pending.size > 0) await sleep(POLL_MS);
  }
  return aborted;
}

/**
 * Each test of a domain as it ends, parsed from the domain's status.log
 * while its runner writes it (polled: it is on NFS): "vm1: sieve GOOD".
 */
function followDomainLog(night: Night, name: string, ctx: StepContext): StatusLogFollower {
  return followStatusLog(join(domainDir(sharedDir(night), name).results, 'status.log'), {
    pollMs: POLL_MS,
    isTransient: isUnavailableError,
    onTest: (t) => {
      if (t.testname === 'SERVER_JOB' || /^CLIENT_JOB\.\d+$/.test(t.testname)) return;
      ctx.log(`${name}: ${t.testname} ${t.status}${t.reason ? `: ${t.reason.split('\n')[0]}` : ''}`);
    },
    onError: (e) => ctx.log(`${name}: its status.log can no longer be followed (${e.message}); its results are read when they are collected`),
  });
}

/**
 * A domain's directory, from one listing of it. A listing is of one
 * directory, so the answer cannot mix the shared directory before and after
 * a remount or a rename, as two separate lookups could.
 */
type DirLook = { kind: 'listed'; entries: string[] } | { kind: 'unavailable'; why: string };

function lookAt(dir: DomainDir, shared: string): DirLook {
  try {
    return { kind: 'listed', entries: readdirSync(dir.root) };
  } catch (e) {
    // domains.dispatch made the directory: missing now means the shared directory is away (not mounted, being
    // remounted), never that the domain finished. Any other error is an answer from a share that cannot be read
    // right now, and the runner may still be working behind it.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      return { kind: 'unavailable', why: existsSync(shared) ? `${dir.root} is not there` : `the shared directory ${shared} is not there` };
    }
    return { kind: 'unavailable', why: `${dir.root}: ${(e as Error).message}${isUnavailableError(e) ? '' : ' (not an outage error; check its permissions)'}` };
  }
}

/** The runner's own verdict, for the GOOD line: its journal's outcome, if it wrote one. */
function runnerOutcome(dir: DomainDir): string {
  try {
    const j = JSON.parse(readFileSync(dir.runnerJournal, 'utf8')) as NightData;
    if (!j.outcome) return '';
    return `: ${j.outcome.status}${j.outcome.reason ? ` (${j.outcome.reason})` : ''}`;
  } catch {
    // No journal (the runner gave up before it had one: its ERROR.txt says why) or an unreadable one: the results say it all.
    return existsSync(join(dir.results, 'ERROR.txt')) ? `: its runner could not run them (see ${join(dir.results, 'ERROR.txt')})` : '';
  }
}

/** The ABORT reason for a domain past its timeout: what its directory shows of its runner, and what to check. */
function whyNotFinished(d: DomainSpec, dir: DomainDir, look: DirLook, outageSince: number | undefined): string {
  const name = d.name.value;
  const base = `did not finish its tests within ${d.timeoutSeconds} s (its timeout)`;
  if (look.kind === 'unavailable') {
    const how = outageSince !== undefined ? ` for the last ${formatDuration(Date.now() - outageSince)}` : '';
    return `${base}; its directory has been unavailable${how}: ${look.why}. Check the shared directory's mount on dom0 and in ${name}`;
  }
  const traces = [dir.runnerJournal, dir.runnerLock, dir.results].map((p) => basename(p)).filter((f) => look.entries.includes(f));
  if (traces.length === 0) {
    return (
      `${base}; its runner never took the work: ${dir.control} is still there, with no runner.json, runner.lock or results/ beside it. ` +
      `Check in ${name} that xentest-runner.service is enabled and ran (systemctl status xentest-runner; its journal says which directory it waited for), ` +
      `and that the domain's hostname is ${name}, the name of [${d.section}] (or that the unit runs xentest run --hostname ${name})`
    );
  }
  return `${base}; its runner took the work but did not finish it: ${runnerProgress(dir) ?? `see ${dir.root}`}`;
}

/** Where the runner's journal says it got to: "1 of 3 tests done, it was in ltp (attempt 2)". */
function runnerProgress(dir: DomainDir): string | undefined {
  let j: NightData;
  try {
    j = JSON.parse(readFileSync(dir.runnerJournal, 'utf8')) as NightData;
  } catch {
    return undefined;
  }
  const n = j.steps.length;
  const i = j.steps.findIndex((s) => s.state !== 'done');
  if (i < 0) return `every one of its ${n} tests is done, but it has not removed ${dir.control} yet`;
  const s = j.steps[i]!;
  const done = `${i} of ${n} tests done`;
  return s.state === 'pending' ? `${done}, the next is ${s.name}` : `${done}, it was in ${s.name} (attempt ${s.attempts})`;
}

export function collectStep(night: Night): Step {
  return {
    name: 'domains.collect',
    async run(ctx): Promise<StepResult> {
      const created = night.journal.output<string[]>('domains.start', 'created');
      const got = await copyDomainResults(
        sharedDir(night),
        night.control.domains.map((d) => d.name.value),
        join(night.dir, 'domains'),
        { log: (line) => ctx.log(line) },
      );
      ctx.checkpoint('middle');
      for (const name of created) {
        const r = await ctx.run(`xl destroy ${shellQuote(name)}`, { cwd: '/', timeoutMs: XL_TIMEOUT_MS });
        if (r.exitStatus !== 0) ctx.log(`xl destroy ${name} ${describeResult(r)}`);
      }
      const where = `results of ${got.collected.join(', ') || 'no domain'} in ${join(night.dir, 'domains')}`;
      if (got.notCollected.length > 0) {
        const names = got.notCollected.map((f) => f.name);
        return {
          status: 'ERROR',
          reason:
            `results of ${names.join(', ')} not collected: ${got.notCollected.map((f) => f.why).join('; ')}. ` +
            `Copy ${names.map((n) => domainDir(sharedDir(night), n).results).join(', ')} by hand before the next night's dispatch replaces them; ${where}`,
          outputs: { collected: got.collected, notCollected: names },
        };
      }
      return { status: 'GOOD', reason: where, outputs: { collected: got.collected } };
    },
  };
}

export interface CopyResultsOptions {
  /** How long an outage of the shared directory may last (default COLLECT_OUTAGE_LIMIT_MS). */
  limitMs?: number;
  log?: (line: string) => void;
}

/**
 * Each domain's results/ copied to destRoot/<name> (links copied as links,
 * never followed: a guest's results cannot pull in dom0's files), waiting out
 * a brief outage of the shared directory. Every domain's directory was made
 * by domains.dispatch, so one that is missing means the shared directory is
 * away, not that the domain has no results; a copy cut short is made again.
 * An outage is given up after the limit, and the domains still to copy are
 * listed as not collected, with why.
 */
export async function copyDomainResults(
  shared: string,
  names: readonly string[],
  destRoot: string,
  options: CopyResultsOptions = {},
): Promise<{ collected: string[]; notCollected: Array<{ name: string; why: string }> }> {
  const limitMs = options.limitMs ?? COLLECT_OUTAGE_LIMIT_MS;
  const log = options.log ?? (() => {});
  const collected: string[] = [];
  const notCollected: Array<{ name: string; why: string }> = [];
  /** When the current outage began; one outage is waited out once, not once per domain. */
  let outageSince: number | undefined;
  let delay = COLLECT_FIRST_DELAY_MS;
  for (const name of names) {
    const dir = domainDir(shared, name);
    const dest = join(destRoot, name);
    for (;;) {
      let why: string;
      try {
        const entries = readdirSync(dir.root);
        if (entries.includes(basename(dir.results))) {
          rmSync(dest, { recursive: true, force: true });
          mkdirSync(destRoot, { recursive: true });
          cpSync(dir.results, dest, { recursive: true, verbatimSymlinks: true });
          collected.push(name);
        }
        if (outageSince !== undefined) log(`the shared directory is back after ${formatDuration(Date.now() - outageSince)}`);
        outageSince = undefined;
        delay = COLLECT_FIRST_DELAY_MS;
        break;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // A file that vanished mid-copy is the share going away (or a runner past its timeout still writing): copy again.
        if (code !== 'ENOENT' && !isUnavailableError(e)) {
          notCollected.push({ name, why: `copying ${dir.results} to ${dest}: ${(e as Error).message}` });
          break;
        }
        why = !existsSync(shared) ? `the shared directory ${shared} is not there` : !existsSync(dir.root) ? `${dir.root} is not there` : (e as Error).message;
      }
      const now = Date.now();
      if (outageSince === undefined) {
        outageSince = now;
        log(`${name}: ${why}; the shared directory may be briefly unavailable: retrying for up to ${formatDuration(limitMs)}`);
      }
      if (now - outageSince >= limitMs) {
        notCollected.push({ name, why: `the shared directory has been unavailable for ${formatDuration(now - outageSince)} (${why})` });
        break;
      }
      await sleep(Math.min(delay, Math.max(1, outageSince + limitMs - now)));
      delay = Math.min(delay * 2, COLLECT_MAX_DELAY_MS);
    }
  }
  return { collected, notCollected };
}
