/**
 * One fuzzing run: generate (or take) calls, say what Xen must answer, send
 * them, compare, and leave no domain of its own behind, also when
 * interrupted. Output is the paper's: the seed first, then for each call the
 * structure, "Expecting E", and "PASS: errno=E expected E" or FAIL.
 */
import { Mulberry32 } from '../../shared/random/mulberry32.js';
import { CMD, DOMCTL_SIZE, OFF_DOMAIN, encodeDomctl, type DomctlCall } from './domctl.js';
import { CallGenerator, type GeneratorStats } from './generator.js';
import { DomctlModel, type Expectation } from './model.js';
import { withholdReason, type SafetyRules } from './safety.js';
import { describeErrno, dumpCall, formatErrno, formatErrnos } from './callspec.js';
import { errnoName } from './domctl.js';
import type { HypercallBackend } from './backend.js';
import type { FuzzTarget } from './target.js';

export interface Output {
  write(text: string): void;
  flush(): void;
}

/** Buffered writes to a stream (stdout is synchronous on Linux for files and pipes). */
export function streamOutput(stream: NodeJS.WritableStream): Output {
  let buf: string[] = [];
  let size = 0;
  return {
    write(text: string) {
      buf.push(text);
      size += text.length;
      if (size > 65536) this.flush();
    },
    flush() {
      if (buf.length) stream.write(buf.join(''));
      buf = [];
      size = 0;
    },
  };
}

export interface SessionOptions {
  /** The calls come from this seed... */
  seed?: number;
  loops?: number;
  /** ...or are exactly these (a replay). */
  calls?: DomctlCall[];
  quiet: boolean;
  safety: SafetyRules;
  /** Keep every call sent, for --minimize. */
  record: boolean;
  /** Set when a signal asks the run to stop; checked between calls. */
  stop?: { requested: NodeJS.Signals | null };
}

export interface SentCall {
  /** 1-based number in the run. */
  n: number;
  call: DomctlCall;
}

export interface SessionResult {
  calls: number;
  passed: number;
  failed: number;
  withheld: number;
  stats: GeneratorStats;
  failures: SentCall[];
  /** Calls sent, in order, up to and including the first failure (with record). */
  sent: SentCall[];
  interrupted: NodeJS.Signals | null;
  cleanupProblems: string[];
  /** Times an answer was judged again because the domain table changed under the run. */
  tableChanges: number;
}

const YIELD_EVERY = 4096;

/**
 * Wrong answers in a row, the domain table unchanged, after which a run
 * stops listing it on the next one (a listing is an `xl list`): they are
 * the hypervisor's (or the model's), and a bug that answers wrong every
 * time must not cost a listing per call.
 */
const TABLE_LOOKS = 20;

export async function runSession(target: FuzzTarget, backend: HypercallBackend, opts: SessionOptions, out: Output): Promise<SessionResult> {
  const model = new DomctlModel(target.profile, target.caller, target.initial, target.complete);
  const rng = new Mulberry32(opts.seed ?? 0);
  const gen = new CallGenerator(rng, target.profile.interfaceVersion);
  const total = opts.calls ? opts.calls.length : opts.loops ?? 1;
  const buf = new Uint8Array(DOMCTL_SIZE);
  const view = new DataView(buf.buffer);
  const res: SessionResult = {
    calls: 0, passed: 0, failed: 0, withheld: 0, stats: gen.stats, failures: [], sent: [], interrupted: null, cleanupProblems: [], tableChanges: 0,
  };
  const quiet = opts.quiet;
  let recording = opts.record;
  let unexplained = 0;

  for (let n = 1; n <= total; n++) {
    if (n % YIELD_EVERY === 0) {
      await new Promise((r) => setImmediate(r));
    }
    if (opts.stop?.requested) {
      res.interrupted = opts.stop.requested;
      break;
    }
    const call = opts.calls ? opts.calls[n - 1]! : gen.next({ known: model.knownIds(), ours: model.oursIds(), self: target.caller.domid });
    res.calls += 1;
    let expected = model.expect(call);
    const withheld = withholdReason(call, expected, model, opts.safety);
    if (withheld !== null) {
      res.withheld += 1;
      if (!quiet) out.write(`[${n}] op\n${dumpCall(call).join('\n')}\nSKIP: not sent, ${withheld} (--unsafe sends it)\n`);
      continue;
    }
    encodeDomctl(call, buf, view);
    const rc = backend.domctl(buf, call.badBuffer);
    const errno = -rc;
    const returned = view.getUint16(OFF_DOMAIN, true);
    let { ok, extra } = judge(call, expected, errno, returned);
    if (!ok && model.complete && backend.domains && unexplained < TABLE_LOOKS) {
      // A toolstack may have started or ended domains under the run: judge the answer again
      // against the table as it is now (with this call's own doing taken out of it).
      const listed = await backend.domains();
      const change = listed === null ? null : model.resync(tableBefore(listed, call, errno, returned));
      if (!change) unexplained += 1;
      else {
        unexplained = 0;
        res.tableChanges += 1;
        const again = model.expect(call);
        const second = judge(call, again, errno, returned);
        const note = `the domain table changed during the run (${describeChange(change)}): judged against it as it is now`;
        if (second.ok) {
          ({ ok, extra } = second);
          expected = again;
          extra += ` (${note})`;
          if (quiet) out.write(`Note: call ${n}: ${note}\n`);
        } else {
          extra += ` (${note}, and still expected ${formatErrnos(again.errnos)}: ${again.why})`;
        }
      }
    }
    if (recording) res.sent.push({ n, call });
    if (ok) {
      res.passed += 1;
      if (!quiet) out.write(`[${n}] op\n${dumpCall(call).join('\n')}\nExpecting ${formatErrnos(expected.errnos)} (${expectedNames(expected.errnos)}: ${expected.why})\nPASS: errno=${formatErrno(errno)} expected ${formatErrnos(expected.errnos)}${extra}\n`);
    } else {
      res.failed += 1;
      res.failures.push({ n, call });
      recording = false;
      out.write(`[${n}] op\n${dumpCall(call).join('\n')}\nExpecting ${formatErrnos(expected.errnos)} (${expectedNames(expected.errnos)}: ${expected.why})\nFAIL: errno=${describeErrno(errno)} expected ${formatErrnos(expected.errnos)}${extra}\n`);
    }
    model.apply(call, errno, returned);
  }
  await cleanup(target, backend, model, res, out, quiet);
  return res;
}

/** Does Xen's answer (errno, and the domain it copied back) match the expectation? */
function judge(call: DomctlCall, expected: Expectation, errno: number, returned: number): { ok: boolean; extra: string } {
  if (!expected.errnos.includes(errno)) return { ok: false, extra: '' };
  if (errno === 0 && expected.domain !== undefined && returned !== expected.domain) return { ok: false, extra: ` (returned domain ${returned}, expected ${expected.domain})` };
  if (errno === 0 && (call.cmd >>> 0 === CMD.createdomain || call.cmd >>> 0 === CMD.getdomaininfo)) return { ok: true, extra: ` (domain ${returned})` };
  return { ok: true, extra: '' };
}

/** The table listed after a call, as it was before it: without the domain the call created, with the one it destroyed. */
function tableBefore(listed: readonly number[], call: DomctlCall, errno: number, returned: number): readonly number[] {
  if (errno !== 0 || call.badBuffer) return listed;
  const cmd = call.cmd >>> 0;
  if (cmd === CMD.createdomain) return listed.filter((id) => id !== returned);
  if (cmd === CMD.destroydomain) return [...new Set([...listed, call.domain])];
  return listed;
}

function describeChange(c: { appeared: number[]; gone: number[] }): string {
  const part = (ids: number[], what: string) => (ids.length ? [`domain${ids.length === 1 ? '' : 's'} ${ids.join(', ')} ${what}`] : []);
  return [...part(c.appeared, 'appeared'), ...part(c.gone, 'went')].join(', ');
}

/** Destroy every domain this run created (correct version, readable buffer). */
async function cleanup(target: FuzzTarget, backend: HypercallBackend, model: DomctlModel, res: SessionResult, out: Output, quiet: boolean): Promise<void> {
  const buf = new Uint8Array(DOMCTL_SIZE);
  for (const id of [...model.oursIds()]) {
    const call: DomctlCall = { cmd: CMD.destroydomain, interfaceVersion: target.profile.interfaceVersion, domain: id, badBuffer: false };
    encodeDomctl(call, buf);
    const rc = backend.domctl(buf, false);
    if (rc === 0) {
      model.apply(call, 0, id);
      if (!quiet) out.write(`Cleanup: destroyed domain ${id}\n`);
    } else {
      const problem = `domain ${id} (created by this run) could not be destroyed: errno=${describeErrno(-rc)}; destroy it by hand (xl destroy ${id})`;
      res.cleanupProblems.push(problem);
      out.write(`Cleanup: ${problem}\n`);
    }
  }
}

function expectedNames(errnos: readonly number[]): string {
  return errnos.map((e) => (e === 0 ? 'success' : errnoName(e) || String(e))).join(' or ');
}
