/**
 * The morning report as a short plain-text summary, for an email or a
 * terminal: the verdict on the first line (it makes a good subject), what
 * failed with the last lines of each regression's log, what changed, and
 * where the whole report is.
 */
import type { CompareClass } from '../compare.js';
import { classCount } from '../explain.js';
import type { ReportData, ReportFailure } from './model.js';

/** Lines of each regression's log in the summary (the HTML report has more). */
const SUMMARY_LOG_LINES = 8;
const WIDTH = 110;
/** New tests named in the summary (a first night has nothing but new ones). */
const NEW_LISTED = 10;

function clip(s: string, width = WIDTH): string {
  const line = s.split('\n')[0] ?? '';
  return line.length > width ? `${line.slice(0, width - 3)}...` : line;
}

/** The first line: fit for an email's subject. */
export function subjectLine(r: ReportData): string {
  return `xentest ${r.machine} night ${r.night}: ${r.verdict.word}: ${clip(r.verdict.headline, 160)}`;
}

function failureLines(f: ReportFailure, withLog: boolean): string[] {
  const what = f.kind === 'step' ? `step ${f.name}` : f.kind === 'domain' ? `domain ${f.name}` : `${f.domain}/${f.name}`;
  const out = [`  ${what}  ${f.status}${f.detail ? `  ${f.detail}` : ''}`];
  if (f.reason) out.push(`      ${clip(f.reason)}`);
  if (withLog && f.excerpt) {
    const lines = f.excerpt.text.split('\n').slice(-SUMMARY_LOG_LINES);
    out.push(`      ${f.excerpt.file}:`, ...lines.map((l) => `      | ${clip(l, WIDTH - 8)}`));
  }
  return out;
}

export function renderReportText(r: ReportData, htmlPath?: string): string {
  const out: string[] = [subjectLine(r), ''];
  const b = r.build;
  const built = [b.xenVersion ? `Xen ${b.xenVersion}` : null, b.xenBuildId ? `build id ${b.xenBuildId.slice(0, 12)}` : null, b.xenTree ? `tree ${b.xenTree}` : null]
    .filter(Boolean)
    .join(', ');
  out.push(`${built || 'no build booted'}; ${r.counts.tests} tests: ${r.counts.pass} passed, ${r.counts.fail} failed${r.counts.skip ? `, ${r.counts.skip} skipped` : ''}`);
  if (r.classes) {
    const classes = r.classes;
    const shown: CompareClass[] = ['regression', 'fixed', 'flaky', 'still-failing', 'never-passed', 'new', 'skipped', 'pass'];
    const parts = shown.filter((k) => classes[k] > 0 || k === 'regression').map((k) => classCount(k, classes[k]));
    if (r.gone.length) parts.push(`${r.gone.length} gone`);
    out.push(`compared with earlier nights: ${parts.join(', ')}`);
  } else {
    out.push(`not compared with earlier nights: ${r.notCompared ?? 'no results database'}`);
  }

  const first = r.failures.filter((f) => f.kind !== 'test' || f.class === 'regression' || f.class === null);
  const known = r.failures.filter((f) => !first.includes(f));
  if (first.length) {
    out.push('', r.classes ? 'Failed (regressions and the night\'s own failures):' : 'Failed:');
    for (const f of first) out.push(...failureLines(f, true));
  }
  if (known.length) {
    out.push('', 'Known failures:');
    for (const f of known) out.push(...failureLines(f, false));
  }
  if (r.fixed.length) {
    out.push('', 'Fixed:');
    for (const t of r.fixed) out.push(`  ${t.domain}/${t.name}  ${t.detail}`);
  }
  if (r.added.length) {
    const shown = r.added.slice(0, NEW_LISTED).map((t) => `${t.domain}/${t.name} (${t.status})`);
    out.push('', `New: ${shown.join(', ')}${r.added.length > NEW_LISTED ? ` and ${r.added.length - NEW_LISTED} more` : ''}`);
  }
  if (r.gone.length) {
    out.push('', 'Gone:');
    for (const g of r.gone) out.push(`  ${g.domain}/${g.name}  ${g.detail}`);
  }
  out.push('', 'Domains:');
  for (const d of r.domains) {
    const passed = d.tests.filter((t) => t.status === 'GOOD' || t.status === 'WARN').length;
    out.push(`  ${d.name}: ${d.status}, ${d.tests.length} tests, ${passed} passed${d.reason ? ` (${clip(d.reason, 80)})` : ''}`);
  }
  out.push('', `results: ${r.dir}`);
  if (htmlPath) out.push(`report: ${htmlPath}`);
  return out.join('\n') + '\n';
}
