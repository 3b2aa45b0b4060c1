/**
 * `xentest compare [NIGHT] [--base NIGHT] [--machine M] [--json] [--db URL|FILE]`:
 * each test of a night (default: the newest) against its history on the
 * same machine and domain (../results/compare.ts has the exact rules).
 * Regressions come first, each with the night it regressed against, as
 * osstest's "REGR. vs. flight N".
 *
 * Exit status: 0 no regression; 1 at least one; 64 a usage mistake (a
 * night that is not in the database among them); 69 the database cannot be
 * opened or reached.
 */
import { parseArgs } from 'node:util';
import { COMPARE_CLASSES, CompareError, compareNight, type CompareClass, type CompareOptions, type ComparedTest, type Comparison } from '../results/compare.js';
import type { GoneTest, NightRow, ResultsDb } from '../results/db/store.js';
import { CLASS_TITLES, classDetail, goneDetail, otherDomainNote } from '../results/explain.js';
import { withResultsDb } from './db.js';
import { EXIT_USAGE } from './usage.js';

const REASON_WIDTH = 100;

function firstLine(s: string): string {
  const line = s.split('\n')[0] ?? '';
  return line.length > REASON_WIDTH ? `${line.slice(0, REASON_WIDTH - 3)}...` : line;
}

/** What to say about a test besides its status: against what, where else it passed tonight, and its reason. */
function detail(t: ComparedTest): string {
  const main = [classDetail(t), otherDomainNote(t)].filter(Boolean).join(' ');
  const reason = t.class === 'pass' || t.class === 'fixed' ? '' : firstLine(t.reason);
  return main && reason ? `${main}: ${reason}` : main || reason;
}

function nightLine(n: NightRow): string {
  return `night ${n.night} of ${n.machine} (${n.status ?? 'not finished'}, started ${n.started})`;
}

export function formatComparison(c: Comparison): string {
  const out: string[] = [];
  out.push(nightLine(c.night));
  out.push(
    c.base
      ? `compared with ${nightLine(c.base)}`
      : 'each test compared with the last earlier night that ran it on this machine and domain',
  );
  const rows = new Map<CompareClass, Array<[string, string, string]>>();
  for (const t of c.tests) {
    if (t.class === 'pass') continue;
    const list = rows.get(t.class) ?? [];
    list.push([`${t.domain}/${t.name}`, t.status, detail(t)]);
    rows.set(t.class, list);
  }
  rows.set(
    'gone',
    c.gone.map((g: GoneTest) => [`${g.domain}/${g.name}`, '-', goneDetail(g)]),
  );
  const all = [...rows.values()].flat();
  const w0 = Math.max(0, ...all.map((r) => r[0].length));
  const w1 = Math.max(0, ...all.map((r) => r[1].length));
  for (const k of COMPARE_CLASSES) {
    const list = rows.get(k);
    if (!list || list.length === 0) continue;
    out.push('', `${CLASS_TITLES[k]} (${list.length}):`);
    for (const [a, b, d] of list) out.push(`  ${a.padEnd(w0)}  ${b.padEnd(w1)}  ${d}`.trimEnd());
  }
  out.push('', summaryLine(c));
  return out.join('\n') + '\n';
}

function summaryLine(c: Comparison): string {
  const parts = COMPARE_CLASSES.filter((k) => c.counts[k] > 0 || k === 'regression').map((k) => `${c.counts[k]} ${CLASS_TITLES[k]}`);
  return `${c.tests.length} tests: ${parts.join(', ')}`;
}

function nightJson(n: NightRow | null): object | null {
  if (!n) return null;
  return {
    machine: n.machine,
    night: n.night,
    started: n.started,
    finished: n.finished,
    status: n.status,
    dir: n.dir,
    build: { xenTree: n.xenTree, linuxTree: n.linuxTree, xenVersion: n.xenVersion, xenBuildId: n.xenBuildId, kernel: n.kernel },
  };
}

export function comparisonJson(c: Comparison): object {
  return {
    machine: c.machine,
    night: nightJson(c.night),
    base: nightJson(c.base),
    goneComparedWith: c.goneRef?.night ?? null,
    counts: c.counts,
    tests: c.tests,
    gone: c.gone,
  };
}

/** The comparison a command line asked for, or, for a night that is not there, the message said and EXIT_USAGE. */
export async function compareOrSay(db: ResultsDb, command: string, options: CompareOptions): Promise<Comparison | number> {
  try {
    return await compareNight(db, options);
  } catch (e) {
    if (e instanceof CompareError) {
      process.stderr.write(`xentest: ${command}: ${e.message}\n  hint: ${e.hint}\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
}

export async function compareCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      base: { type: 'string' },
      machine: { type: 'string' },
      json: { type: 'boolean', default: false },
      db: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 1) {
    process.stderr.write(`xentest: compare: one night at a time (given ${positionals.join(', ')})\n  hint: usage: xentest compare [NIGHT] [--base NIGHT] [--machine M] [--json] [--db URL|FILE]\n`);
    return EXIT_USAGE;
  }
  return withResultsDb(values.db, { create: false }, async (db) => {
    const c = await compareOrSay(db, 'compare', {
      ...(positionals[0] !== undefined ? { night: positionals[0] } : {}),
      ...(values.base !== undefined ? { base: values.base } : {}),
      ...(values.machine !== undefined ? { machine: values.machine } : {}),
    });
    if (typeof c === 'number') return c;
    process.stdout.write(values.json ? JSON.stringify(comparisonJson(c), null, 2) + '\n' : formatComparison(c));
    return c.counts.regression > 0 ? 1 : 0;
  });
}
