/**
 * Run the scenarios on one interface: put back what an interrupted run left,
 * remember the target, run each scenario and put the target back after it,
 * and put it back on SIGINT, SIGTERM and SIGHUP too. A SIGKILL leaves the
 * restore record for the next run.
 */
import { SuiteContext, BelowFloor, fail, type ContextOptions, type ScenarioResult } from './context.js';
import { BalloonUnavailable, type BalloonInterface } from './interface.js';
import { clearRestore, readRestore, restoreFile, saveRestore } from './restore.js';
import { SCENARIOS, type Scenario } from './scenarios.js';

export interface SuiteOptions extends ContextOptions {
  stateDir: string;
  /** Only these scenarios (by name); all when empty. */
  only: readonly string[];
}

export interface SuiteResult {
  iface: BalloonInterface;
  results: { scenario: Scenario; result: ScenarioResult }[];
  /** Set when the target could not be put back: the suite stopped there. */
  stopped: string | null;
}

function xlDomain(iface: BalloonInterface): string | null {
  return iface.name === 'xl' ? iface.where.replace(/^xl mem-set /, '') : null;
}

/**
 * The record an interrupted run left, put back first through one of these
 * interfaces that reaches the same target (sysfs and /proc are the same
 * domain's driver; xl is the domain it names); else say how to.
 */
export async function restoreLeftover(candidates: readonly BalloonInterface[], stateDir: string, log: (s: string) => void): Promise<boolean> {
  const rec = readRestore(stateDir);
  if (rec === null) return false;
  const iface = candidates.find((i) => (rec.interface === 'xl' ? i.name === 'xl' && rec.domain === xlDomain(i) : i.name !== 'xl'));
  if (!iface) {
    throw new BalloonUnavailable(
      `an interrupted run through ${rec.interface}${rec.domain ? ` (domain ${rec.domain})` : ''} left a target of ${rec.targetKb} kB to put back`,
      `run "xentest balloon --restore --interface ${rec.interface}${rec.domain ? ` --domain ${rec.domain}` : ''}" first`,
    );
  }
  log(`restoring the target of ${rec.targetKb} kB that an interrupted run (pid ${rec.pid}, ${rec.startedAt}) left`);
  const r = await iface.request(rec.targetKb);
  if (!r.ok) throw new BalloonUnavailable(`could not restore the target of ${rec.targetKb} kB through ${iface.where}: ${r.code} ${r.message}`, 'put it back by hand, then remove ' + restoreFile(stateDir));
  clearRestore(stateDir);
  return true;
}

export async function runSuite(iface: BalloonInterface, options: SuiteOptions): Promise<SuiteResult> {
  const log = options.log;
  await restoreLeftover([iface], options.stateDir, log);
  const original = await iface.read();
  saveRestore(options.stateDir, {
    interface: iface.name,
    domain: xlDomain(iface),
    targetKb: original.targetKb,
    pid: process.pid,
    startedAt: new Date().toISOString(),
  });
  const ctx = new SuiteContext(iface, original, options);
  ctx.staticMaxKb = await iface.staticMaxKb();
  ctx.xenLimitKb = await iface.xenLimitKb();
  log(`balloon suite on ${iface.where}: allocation ${original.currentKb} kB, target ${original.targetKb} kB, static-max ${ctx.staticMaxKb ?? 'unknown'}${ctx.staticMaxKb === null ? '' : ' kB'}${ctx.xenLimitKb === null ? '' : `, Xen gives up to ${ctx.xenLimitKb} kB`}, floor ${ctx.floorKb} kB, seed ${options.seed}`);

  let stopping: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = sig;
    log(`${sig}: putting the target back to ${original.targetKb} kB`);
    void ctx.restore().then((r) => {
      if (r === null) clearRestore(options.stateDir);
      else log(r.reason);
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGHUP' ? 1 : 15));
    });
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);

  const selected = options.only.length === 0 ? SCENARIOS : SCENARIOS.filter((s) => options.only.includes(s.name));
  const results: SuiteResult['results'] = [];
  let stopped: string | null = null;
  try {
    for (const [k, scenario] of selected.entries()) {
      log(`[${k + 1}/${selected.length}] ${scenario.name} (${iface.name}): ${scenario.summary}`);
      log(`  expected: ${scenario.expected[iface.name]}`);
      let result: ScenarioResult;
      try {
        result = await scenario.run(ctx);
      } catch (e) {
        if (e instanceof BelowFloor) throw e;
        result = fail(`${(e as Error).message}`);
      }
      const back = await ctx.restore();
      if (back) {
        result = result.status === 'FAIL' ? result : back;
        stopped = back.reason;
      } else {
        await ctx.settle(original.targetKb);
      }
      log(`  ${result.status}: ${result.reason}`);
      results.push({ scenario, result });
      if (stopped) {
        log(`stopping: ${stopped}`);
        break;
      }
    }
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
  if (!stopped) clearRestore(options.stateDir);
  return { iface, results, stopped };
}
