/**
 * `xenfc`: the domctl hypercall fuzzer's command line.
 *
 *   xenfc [-s SEED] [-l LOOPS] [-q] [--backend auto|xen|sim] [--minimize]
 *         [--unsafe] [--max-domains N] [--iommu on|off]
 *         [--xen-version X.Y] [--sim-caller DOMID] [--call SPEC ...]
 *
 * Exit status: 0 every call answered as expected; 1 a FAIL (or a domain of
 * its own it could not destroy); 64 a usage error; 69 the backend cannot be
 * used here; 128+N stopped by signal N (its domains destroyed first).
 */
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import { BackendUnavailable } from './backend.js';
import { CallSpecError, callSpec, parseCallSpec } from './callspec.js';
import type { DomctlCall } from './domctl.js';
import { minimizeFailure } from './minimize.js';
import { runSession, streamOutput } from './session.js';
import { selectTarget, type BackendChoice } from './target.js';
import { shellQuote } from '../../shared/process/run.js';

export const XENFC_USAGE = `usage: xenfc [-s SEED] [-l LOOPS] [-q] [--backend auto|xen|sim] [--minimize] [--unsafe]
             [--max-domains N] [--iommu on|off] [--xen-version X.Y] [--sim-caller DOMID]
             [--call SPEC ...]

  -s, --seed SEED     replay the run of this seed (0..4294967295; default: a new one, printed first)
  -l, --loops N       how many calls (default 1); each loop makes a new random call
  -q, --quiet         print only the seed, the failures and the summary
  --backend B         xen: real hypercalls (libxencall); sim: the simulated hypervisor;
                      auto (default): xen when /dev/xen/privcmd exists, sim on a simulated host
  --minimize          reduce the first FAIL to the shortest sequence of calls that still fails
                      and print the command that replays it
  --unsafe            also pause, unpause and destroy domains this run did not create
                      (dom0 and itself included), and create more than --max-domains
  --max-domains N     live domains of its own at most (default 8)
  --iommu on|off      is an IOMMU in use? (createdomain asking for one is EINVAL without;
                      default off for sim, unknown for xen: either answer is accepted)
  --xen-version X.Y   sim away from a simulated host: the Xen to simulate (default 4.17)
  --sim-caller DOMID  sim away from a simulated host: call from guest DOMID (unprivileged)
  --call SPEC         send exactly this call (repeatable), e.g. cmd=3,version=0x15,domain=5
`;

export const EXIT_FAIL = 1;
export const EXIT_USAGE = 64;
export const EXIT_UNAVAILABLE = 69;

class Usage extends Error {}

function integer(text: string, what: string, min: number, max: number): number {
  if (!/^\d+$/.test(text)) throw new Usage(`${what} ${text} is not a whole number`);
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new Usage(`${what} ${text} is out of range (${min}..${max})`);
  return n;
}

export async function xenfcMain(argv: string[]): Promise<number> {
  const err = (s: string) => process.stderr.write(s);
  try {
    return await run(argv);
  } catch (e) {
    if (e instanceof Usage || e instanceof CallSpecError || isParseArgsError(e)) {
      err(`xenfc: ${(e as Error).message}\n  hint: run "xenfc --help" for the options\n`);
      return EXIT_USAGE;
    }
    if (e instanceof BackendUnavailable) {
      err(`xenfc: ${e.message}\n  hint: ${e.hint}\n`);
      return EXIT_UNAVAILABLE;
    }
    if (e instanceof Error && /domctl interface|XENTEST_SIM_XEN_BUG|simulated machine|not the root of any domain/.test(e.message)) {
      err(`xenfc: ${e.message}\n`);
      return EXIT_UNAVAILABLE;
    }
    throw e;
  }
}

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      seed: { type: 'string', short: 's' },
      loops: { type: 'string', short: 'l' },
      quiet: { type: 'boolean', short: 'q', default: false },
      backend: { type: 'string', default: 'auto' },
      minimize: { type: 'boolean', default: false },
      unsafe: { type: 'boolean', default: false },
      'max-domains': { type: 'string' },
      iommu: { type: 'string' },
      'xen-version': { type: 'string' },
      'sim-caller': { type: 'string' },
      call: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(XENFC_USAGE);
    return 0;
  }
  if (positionals.length) throw new Usage(`unexpected argument "${positionals[0]}"`);
  const backend = values.backend as string;
  if (!['auto', 'xen', 'sim'].includes(backend)) throw new Usage(`--backend ${backend}: choose auto, xen or sim`);
  if (values.iommu !== undefined && !['on', 'off'].includes(values.iommu)) throw new Usage(`--iommu ${values.iommu}: choose on or off`);
  const calls: DomctlCall[] | undefined = values.call?.map(parseCallSpec);
  if (calls && (values.seed !== undefined || values.loops !== undefined)) throw new Usage('--call replays the calls given; it takes no -s or -l');
  const seed = values.seed !== undefined ? integer(values.seed, '-s', 0, 0xffffffff) : calls ? undefined : randomInt(0, 2 ** 32 - 1);
  const loops = values.loops !== undefined ? integer(values.loops, '-l', 1, Number.MAX_SAFE_INTEGER) : 1;
  const maxDomains = values['max-domains'] !== undefined ? integer(values['max-domains'], '--max-domains', 0, 32000) : 8;
  const simCaller = values['sim-caller'] !== undefined ? integer(values['sim-caller'], '--sim-caller', 0, 0x7fef) : undefined;
  if ((values['xen-version'] !== undefined || simCaller !== undefined) && backend === 'xen') throw new Usage('--xen-version and --sim-caller are for --backend sim');

  const out = streamOutput(process.stdout);
  // The seed comes first, before anything can go wrong, so any run can be replayed.
  out.write(seed !== undefined ? `Seed: ${seed}\n` : `Seed: none (replaying ${calls!.length} given call${calls!.length === 1 ? '' : 's'})\n`);
  out.flush();
  const target = await selectTarget({
    backend: backend as BackendChoice,
    ...(values['xen-version'] !== undefined ? { xenVersion: values['xen-version'] } : {}),
    ...(simCaller !== undefined ? { simCaller } : {}),
    ...(values.iommu !== undefined ? { iommu: values.iommu === 'on' } : {}),
  });
  out.write(`Target: ${target.describe}\n`);
  out.flush();
  const safety = { unsafe: values.unsafe, maxDomains };

  const stop = { requested: null as NodeJS.Signals | null };
  const onSignal = (s: NodeJS.Signals) => {
    stop.requested = s;
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  const b = target.open();
  let result;
  try {
    result = await runSession(target, b, {
      ...(calls ? { calls } : { seed: seed!, loops }), quiet: values.quiet, safety, record: values.minimize, stop,
    }, out);
  } finally {
    b.close();
    for (const s of signals) process.off(s, onSignal);
  }

  const pct = (k: number) => (result.stats.calls ? ((100 * k) / result.stats.calls).toFixed(2) : '0.00');
  const shares = calls ? '' : `; random versions ${pct(result.stats.randomVersions)}%, valid commands ${pct(result.stats.validCommands)}%`;
  const changes = result.tableChanges ? `; the domain table changed under it ${result.tableChanges} time${result.tableChanges === 1 ? '' : 's'}` : '';
  out.write(`Summary: ${result.calls} call${result.calls === 1 ? '' : 's'}: ${result.passed} passed, ${result.failed} failed, ${result.withheld} withheld${shares}${changes}\n`);
  const replayHead = [...target.replayEnv.map(shellQuoteAssignment), 'xenfc', ...target.replayArgs];
  if (seed !== undefined) out.write(`Replay: ${[...replayHead, '-s', String(seed), '-l', String(result.calls)].join(' ')}\n`);
  if (result.interrupted) out.write(`Interrupted by ${result.interrupted} after ${result.calls} calls\n`);

  if (values.minimize && result.failures.length && !result.interrupted) {
    const first = result.failures[0]!;
    out.write(`Minimising the first failure (call ${first.n}) ...\n`);
    out.flush();
    const m = await minimizeFailure(target, first, result.sent, safety);
    out.write(`Reproducer (${m.calls.length} call${m.calls.length === 1 ? '' : 's'}, found in ${m.replays} replays):\n`);
    out.write(`  ${[...replayHead, ...m.calls.flatMap((c) => ['--call', callSpec(c)])].join(' ')}\n`);
  } else if (values.minimize && !result.failures.length) {
    out.write('Nothing to minimise: no call failed\n');
  }
  out.flush();
  if (result.interrupted) return 128 + (result.interrupted === 'SIGINT' ? 2 : result.interrupted === 'SIGTERM' ? 15 : 1);
  return result.failed || result.cleanupProblems.length ? EXIT_FAIL : 0;
}

function shellQuoteAssignment(kv: string): string {
  const eq = kv.indexOf('=');
  return `${kv.slice(0, eq)}=${shellQuote(kv.slice(eq + 1))}`;
}

function isParseArgsError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}
