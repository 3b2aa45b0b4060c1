/**
 * A compared test in words, the same wherever it is shown: `xentest compare`'s
 * table, the morning report and its email summary.
 */
import type { CompareClass, ComparedTest } from './compare.js';
import type { GoneTest } from './db/store.js';

export const CLASS_TITLES: Record<CompareClass, string> = {
  regression: 'regressions',
  flaky: 'flaky',
  'still-failing': 'still failing',
  'never-passed': 'never passed',
  fixed: 'fixed',
  new: 'new',
  gone: 'gone',
  skipped: 'skipped',
  pass: 'passed as before',
};

/** "1 regression", "3 regressions", "2 passed as before". */
export function classCount(k: CompareClass, n: number): string {
  return `${n} ${n === 1 && k === 'regression' ? 'regression' : CLASS_TITLES[k]}`;
}

/** What its class says of a test: against which night, since when, on what evidence. Empty for new, skipped and pass. */
export function classDetail(t: ComparedTest): string {
  switch (t.class) {
    case 'regression':
      return `REGR. vs. night ${t.base?.night} (${t.base?.status})`;
    case 'flaky':
      return t.flaky?.kind === 'rerun' ? `passed on a re-run in this night (${t.runs} runs)` : `passed in night ${t.flaky?.night} on the same build`;
    case 'still-failing':
      return `failing since night ${t.failingSinceNight}, last passed in night ${t.lastPassNight}`;
    case 'never-passed':
      return `never passed (first seen failing in night ${t.failingSinceNight})`;
    case 'fixed':
      return `was ${t.base?.status} in night ${t.base?.night}`;
    case 'new':
    case 'skipped':
    case 'pass':
      return '';
  }
}

/** The note a failure gets when another domain passed the same test this night (domains differ on purpose: not flakiness). */
export function otherDomainNote(t: ComparedTest): string {
  return t.passedInDomain !== null && t.class !== 'flaky' ? `(passed in domain ${t.passedInDomain} this night)` : '';
}

/** Why a test may be missing from the night: its domain did not run, or did not finish. Empty when the domain ran. */
export function goneWhy(g: GoneTest): string {
  if (g.domainStatus === null) return `no domain ${g.domain} in this night`;
  return g.domainStatus === 'GOOD' ? '' : `domain ${g.domain}: ${g.domainStatus}`;
}

/** A gone test in one line: when it last ran, and why it may not have. */
export function goneDetail(g: GoneTest): string {
  const why = goneWhy(g);
  return `was ${g.status} in night ${g.night}, not run in this one${why ? ` (${why})` : ''}`;
}
