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
 *                    file copy; one that is not done by its timeout is ABORT
 *  domains.collect   every domain's results into the night's directory, and
 *                    the guests this night started are destroyed
 *
 * The shared directory is polled, never watched: it is normally NFS, where
 * inotify does not see what other machines write.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../../../shared/atomic.js';
import type { DomainSpec } from '../../../shared/controlfile/model.js';
import { domainDir } from '../../../shared/domaindir.js';
import { describeResult, lastOutputLine, shellQuote } from '../../../shared/process/run.js';
import { parseXlInfo } from '../../xen/identity.js';
import type { Night } from '../night.js';
import type { Step, StepContext, StepResult } from '../runner.js';

const XL_TIMEOUT_MS = 120_000;
const START_TIMEOUT_MS = 120_000;
const POLL_MS = 500;
const XENTEST_BIN = fileURLToPath(new URL('../../../../bin/xentest.js', import.meta.url));

function sharedDir(night: Night): string {
  return night.control.preferences.sharedDir.value;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function dispatchStep(night: Night): Step {
  return {
    name: 'domains.dispatch',
    async run(ctx): Promise<StepResult> {
      const control = readFileSync(night.journal.data.controlFile);
      for (const d of night.control.domains) {
        const dir = domainDir(sharedDir(night), d.name.value);
        // Entered again after an interruption: a domain already given tonight's work keeps it
        // (its runner may have started, or even finished, meanwhile).
        if (existsSync(dir.night) && readFileSync(dir.night, 'utf8').trim() === night.id) continue;
        if (existsSync(dir.root) && lstatSync(dir.root).isSymbolicLink()) {
          return { status: 'ERROR', reason: `${dir.root} is a symbolic link; a domain's directory must be a real directory` };
        }
        // Last night's results were collected into last night's directory.
        for (const old of [dir.control, dir.results, dir.runnerJournal, dir.night]) rmSync(old, { recursive: true, force: true });
        mkdirSync(dir.root, { recursive: true });
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

/** dom0's runner, started here as its unit would be (a second one for the same domain just exits). */
function startLocalRunner(night: Night, d: DomainSpec): void {
  const log = openSync(join(night.dir, 'steps', `runner-${d.name.value}.log`), 'a');
  const child = spawn(process.execPath, [XENTEST_BIN, 'run', '--hostname', d.name.value, '--shared-dir', sharedDir(night)], {
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
      const aborted: string[] = [];
      let polledOnce = false;
      ctx.log(`waiting for ${[...pending.keys()].join(', ') || 'no domain'}`);
      while (pending.size > 0) {
        for (const [name, d] of pending) {
          const dir = domainDir(sharedDir(night), name);
          if (!controlCopyPresent(dir.control)) {
            pending.delete(name);
            ctx.statusOnce('GOOD', `domain.${name}`, 'finished its tests');
          } else if (Date.now() > since + d.timeoutSeconds * 1000) {
            pending.delete(name);
            aborted.push(name);
            ctx.statusOnce('ABORT', `domain.${name}`, `did not finish its tests within ${d.timeoutSeconds} s (its timeout)`);
          }
        }
        if (!polledOnce) ctx.checkpoint('middle');
        polledOnce = true;
        if (pending.size > 0) await sleep(POLL_MS);
      }
      return {
        status: aborted.length ? 'WARN' : 'GOOD',
        reason: aborted.length ? `did not finish: ${aborted.join(', ')}` : 'every domain finished',
        outputs: { aborted },
      };
    },
  };
}

/** Is the control copy still there? A shared directory that cannot be read right now counts as "still working". */
function controlCopyPresent(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

export function collectStep(night: Night): Step {
  return {
    name: 'domains.collect',
    async run(ctx): Promise<StepResult> {
      const created = night.journal.output<string[]>('domains.start', 'created');
      const collected: string[] = [];
      for (const d of night.control.domains) {
        const dir = domainDir(sharedDir(night), d.name.value);
        if (!existsSync(dir.results)) continue;
        const dest = join(night.dir, 'domains', d.name.value);
        rmSync(dest, { recursive: true, force: true });
        // Links are copied as links, never followed: a guest's results cannot pull in dom0's files.
        cpSync(dir.results, dest, { recursive: true, verbatimSymlinks: true });
        collected.push(d.name.value);
      }
      ctx.checkpoint('middle');
      for (const name of created) {
        const r = await ctx.run(`xl destroy ${shellQuote(name)}`, { cwd: '/', timeoutMs: XL_TIMEOUT_MS });
        if (r.exitStatus !== 0) ctx.log(`xl destroy ${name} ${describeResult(r)}`);
      }
      return { status: 'GOOD', reason: `results of ${collected.join(', ') || 'no domain'} in ${join(night.dir, 'domains')}`, outputs: { collected } };
    },
  };
}
