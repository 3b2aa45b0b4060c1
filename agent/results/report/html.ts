/**
 * The morning report as one self-contained HTML page: styles inline, charts
 * as inline SVG, no script, no font, no image, nothing fetched. It opens the
 * same from a file, an email attachment or a web server with no network.
 *
 * Read from the top: the verdict, then what failed (regressions first, each
 * with the end of its log), what changed, each domain's tests, the charts of
 * the last nights, and the night's own steps.
 */
import type { CompareClass } from '../compare.js';
import { CLASS_TITLES, classCount } from '../explain.js';
import { durationChart, passFailChart } from './charts.js';
import { escapeHtml as h } from './escape.js';
import type { ReportData, ReportFailure, ReportTestRef, VerdictWord } from './model.js';

const VERDICT_COLOURS: Record<VerdictWord, string> = {
  INCOMPLETE: '#6d4c41',
  BROKEN: '#8e0000',
  REGRESSED: '#c62828',
  FAILING: '#ef6c00',
  PASS: '#2e7d32',
};

const STYLE = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0; color: #212121; background: #fafafa; }
main { max-width: 1100px; margin: 0 auto; padding: 0 20px 40px; }
header.verdict { color: #fff; padding: 18px 20px; margin: 0 -20px 16px; }
header.verdict h1 { margin: 0; font-size: 30px; letter-spacing: 0.04em; }
header.verdict p { margin: 4px 0 0; font-size: 16px; }
header.verdict .meta { font-size: 13px; opacity: 0.9; }
h2 { font-size: 19px; margin: 26px 0 8px; border-bottom: 1px solid #bdbdbd; padding-bottom: 3px; }
h3 { font-size: 15px; margin: 0 0 4px; }
.counts { display: flex; flex-wrap: wrap; gap: 8px; margin: 0; padding: 0; list-style: none; }
.counts li { background: #fff; border: 1px solid #e0e0e0; border-radius: 4px; padding: 4px 10px; }
.counts b { font-size: 17px; }
article.failure { background: #fff; border: 1px solid #e0e0e0; border-left: 5px solid #c62828; border-radius: 4px; padding: 10px 12px; margin: 10px 0; }
article.failure.known { border-left-color: #ef6c00; }
article.failure.step, article.failure.domain { border-left-color: #8e0000; }
.detail { color: #424242; margin: 2px 0; }
.reason { margin: 2px 0; word-break: break-word; }
pre { background: #263238; color: #eceff1; padding: 8px 10px; border-radius: 3px; overflow-x: auto; font: 12px/1.35 ui-monospace, "DejaVu Sans Mono", monospace; white-space: pre-wrap; word-break: break-all; margin: 6px 0 0; }
.log-file { font-size: 12px; color: #616161; }
table { border-collapse: collapse; width: 100%; background: #fff; margin: 6px 0 14px; }
th, td { border: 1px solid #e0e0e0; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f5f5f5; }
td.num { text-align: right; white-space: nowrap; }
.status { font-weight: 600; white-space: nowrap; }
.s-GOOD { color: #2e7d32; } .s-WARN { color: #f57f17; } .s-FAIL, .s-ERROR, .s-ABORT { color: #c62828; }
.s-TEST_NA, .s-not-run { color: #757575; }
.cls { white-space: nowrap; }
.cls-regression { color: #c62828; font-weight: 600; } .cls-fixed { color: #2e7d32; font-weight: 600; }
.chart { max-width: 100%; height: auto; background: #fff; border: 1px solid #e0e0e0; margin: 4px 0 12px; }
.chart .tick { font-size: 11px; fill: #424242; } .chart .unit { font-size: 11px; fill: #616161; }
.note { color: #616161; }
footer { color: #757575; font-size: 12px; margin-top: 30px; }
`;

function status(s: string): string {
  return `<span class="status s-${h(s.replace(/ /g, '-'))}">${h(s)}</span>`;
}

function duration(seconds: number | null): string {
  if (seconds === null) return '';
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m} min ${Math.round(seconds % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function failureTitle(f: ReportFailure): string {
  if (f.kind === 'step') return `step ${h(f.name)}`;
  if (f.kind === 'domain') return `domain ${h(f.name)}`;
  return `${h(f.domain ?? '')} / ${h(f.name)}`;
}

function failure(f: ReportFailure): string {
  const known = f.class !== null && f.class !== 'regression';
  const cls = ['failure', f.kind, f.class ?? '', known ? 'known' : ''].filter(Boolean).join(' ');
  const label = f.class !== null ? `<span class="cls cls-${f.class}">${h(CLASS_TITLES[f.class].replace(/s$/, ''))}</span> · ` : '';
  return (
    `<article class="${cls}" data-kind="${f.kind}"${f.class ? ` data-class="${f.class}"` : ''}>` +
    `<h3>${label}${failureTitle(f)} ${status(f.status)}</h3>` +
    (f.detail ? `<p class="detail">${h(f.detail)}</p>` : '') +
    (f.reason ? `<p class="reason">${h(f.reason)}</p>` : '') +
    (f.excerpt
      ? `<div class="log-file">${f.excerpt.cut ? 'the end of ' : ''}${h(f.excerpt.file)}</div><pre class="excerpt">${h(f.excerpt.text)}</pre>`
      : '') +
    `</article>`
  );
}

function refs(title: string, id: string, list: ReportTestRef[] | Array<{ domain: string; name: string; detail: string }>): string {
  if (list.length === 0) return '';
  const withDetail = list.some((r) => r.detail !== '');
  const withStatus = list.some((r) => 'status' in r);
  const rows = list.map(
    (r) =>
      `<tr><td>${h(r.domain)}</td><td>${h(r.name)}</td>${withStatus ? `<td>${'status' in r ? status(r.status) : ''}</td>` : ''}` +
      `${withDetail ? `<td>${h(r.detail)}</td>` : ''}</tr>`,
  );
  const head = `<tr><th>domain</th><th>test</th>${withStatus ? '<th>status</th>' : ''}${withDetail ? '<th></th>' : ''}</tr>`;
  return `<h3 id="${id}">${h(title)} (${list.length})</h3><table class="changes"><thead>${head}</thead><tbody>${rows.join('')}</tbody></table>`;
}

function countsList(r: ReportData): string {
  const items: string[] = [`<li><b>${r.counts.tests}</b> tests</li>`, `<li><b>${r.counts.pass}</b> passed</li>`, `<li><b>${r.counts.fail}</b> failed</li>`];
  if (r.counts.skip) items.push(`<li><b>${r.counts.skip}</b> skipped</li>`);
  if (r.classes) {
    const shown: CompareClass[] = ['regression', 'fixed', 'flaky', 'still-failing', 'never-passed', 'new', 'gone'];
    for (const k of shown) {
      const n = k === 'gone' ? r.gone.length : r.classes[k];
      if (n > 0 || k === 'regression') items.push(`<li class="cls-${k}" data-class="${k}"><b>${n}</b> ${h(classCount(k, n).replace(/^\d+ /, ''))}</li>`);
    }
  }
  return `<ul class="counts" id="counts">${items.join('')}</ul>`;
}

function buildLine(r: ReportData): string {
  const b = r.build;
  const parts: string[] = [];
  if (b.xenVersion) parts.push(`Xen ${h(b.xenVersion)}${b.xenBuildId ? ` (build id ${h(b.xenBuildId.slice(0, 12))})` : ''}`);
  if (b.kernel) parts.push(`dom0 kernel ${h(b.kernel)}`);
  if (b.xenTree) parts.push(`tree ${h(b.xenTree.length > 40 ? `${b.xenTree.slice(0, 40)}…` : b.xenTree)}`);
  return parts.join(' · ') || 'no build booted tonight';
}

function domainsSection(r: ReportData): string {
  return r.domains
    .map((d) => {
      const rows = d.tests.map(
        (t) =>
          `<tr data-domain="${h(d.name)}" data-test="${h(t.name)}"><td>${h(t.name)}</td><td>${status(t.status)}</td>` +
          `<td class="cls${t.class ? ` cls-${t.class}` : ''}">${t.class ? h(CLASS_TITLES[t.class].replace(/s$/, '')) : ''}</td>` +
          `<td>${h(t.reason)}${t.expectedToFail ? ' <span class="note">(must fail in an unprivileged domain: a pass)</span>' : ''}${t.detail ? `<div class="note">${h(t.detail)}</div>` : ''}</td>` +
          `<td class="num">${duration(t.seconds)}</td></tr>`,
      );
      const body = rows.length
        ? `<table class="domain-tests"><thead><tr><th>test</th><th>status</th><th>compared</th><th>reason</th><th>time</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
        : '<p class="note">no tests ran</p>';
      return `<section class="domain" id="domain-${h(d.name)}"><h3>${h(d.name)} ${status(d.status)} <span class="note">${h(d.reason)}</span></h3>${body}</section>`;
    })
    .join('');
}

function stepsSection(r: ReportData): string {
  const rows = r.steps.map((s) => `<tr><td>${h(s.name)}</td><td>${status(s.status)}</td><td>${h(s.reason)}</td><td class="num">${duration(s.seconds)}</td></tr>`);
  return `<table id="steps"><thead><tr><th>step</th><th>status</th><th>reason</th><th>time</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

export function renderReportHtml(r: ReportData): string {
  const title = `xentest ${r.machine} ${r.night}: ${r.verdict.word}`;
  const regressions = r.failures.filter((f) => f.kind !== 'test' || f.class === 'regression' || f.class === null);
  const known = r.failures.filter((f) => !regressions.includes(f));
  const failures =
    r.failures.length === 0
      ? '<p class="note">Nothing failed.</p>'
      : (regressions.length ? `<div id="regressions">${regressions.map(failure).join('')}</div>` : '') +
        (known.length ? `<h3>Known failures (${known.length})</h3><div id="known-failures">${known.map(failure).join('')}</div>` : '');
  const changes = refs('Fixed', 'fixed', r.fixed) + refs('New', 'new', r.added) + refs('Gone', 'gone', r.gone);
  const history = r.history.length
    ? `${passFailChart(r.history)}${durationChart(r.history)}<p class="note">The last ${r.history.length} night${r.history.length === 1 ? '' : 's'} of ${h(r.machine)}, oldest on the left; tonight's bar is outlined.</p>`
    : `<p class="note">No history: ${h(r.notCompared ?? 'the results database has no nights of this machine')}.</p>`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${h(title)}</title>
<style>${STYLE}</style></head>
<body><main>
<header class="verdict" id="verdict" data-verdict="${r.verdict.word}" style="background:${VERDICT_COLOURS[r.verdict.word]}">
<h1>${r.verdict.word}</h1>
<p id="headline">${h(r.verdict.headline)}</p>
<p class="meta">night ${h(r.night)} on ${h(r.machine)} · started ${h(r.started)}${r.finished ? ` · finished ${h(r.finished)}` : ''} · ${buildLine(r)}</p>
</header>
${countsList(r)}
${r.notCompared ? `<p class="note" id="not-compared">Not compared with earlier nights: ${h(r.notCompared)}.</p>` : r.base ? `<p class="note">Compared with night ${h(r.base)}.</p>` : '<p class="note">Each test is compared with the last earlier night that ran it in the same domain of this machine.</p>'}
<section id="failures"><h2>What failed</h2>${failures}</section>
${changes ? `<section id="changes"><h2>What changed</h2>${changes}</section>` : ''}
<section id="domains"><h2>Domains</h2>${domainsSection(r)}</section>
<section id="history"><h2>The last nights</h2>${history}</section>
<section id="night-steps"><h2>The night's steps</h2>${stepsSection(r)}</section>
<footer>Results in ${h(r.dir)} · report made ${h(r.generatedAt)} by xentest</footer>
</main></body></html>
`;
}
