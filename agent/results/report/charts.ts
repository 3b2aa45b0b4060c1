/**
 * The report's charts as inline SVG: a page that needs no script and no
 * network to show them, and that a mail client or a browser with scripts off
 * draws the same. Every mark has a <title>, so hovering tells the figure.
 */
import type { NightHistoryRow } from '../db/store.js';
import { escapeHtml } from './escape.js';

const WIDTH = 760;
const HEIGHT = 220;
const M = { top: 14, right: 14, bottom: 40, left: 52 };
export const COLOURS = { pass: '#2e7d32', fail: '#c62828', skip: '#9e9e9e', night: '#1565c0', tests: '#ef6c00' };

/** A round step for an axis from 0 to max, about `ticks` of them; whole numbers for counts. */
function niceStep(max: number, whole: boolean, ticks = 4): number {
  if (max <= 0) return 1;
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  const step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  return whole ? Math.max(1, Math.round(step)) : step;
}

function fmt(n: number): string {
  if (Number.isInteger(n)) return String(n);
  return Math.abs(n) >= 1 ? n.toFixed(1) : String(Number(n.toPrecision(2)));
}

/** The night's date and time as a short label (UTC, as the night ids are). */
function label(row: NightHistoryRow): string {
  const t = Date.parse(row.started);
  if (!Number.isFinite(t)) return row.night;
  const iso = new Date(t).toISOString();
  return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
}

interface Frame {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
  band: number;
  y: (v: number) => number;
  max: number;
  step: number;
}

function frame(n: number, max: number, whole: boolean): Frame {
  const step = niceStep(max, whole);
  const top = Math.max(step, Math.ceil(max / step) * step);
  const x0 = M.left;
  const x1 = WIDTH - M.right;
  const y0 = HEIGHT - M.bottom;
  const y1 = M.top;
  return { x0, x1, y0, y1, band: (x1 - x0) / Math.max(1, n), y: (v) => y0 - (v / top) * (y0 - y1), max: top, step };
}

/** Bars fill most of their band, but a few nights do not make slabs. */
function barWidth(f: Frame): number {
  return Math.min(40, Math.max(2, f.band * 0.7));
}

function axes(f: Frame, rows: readonly NightHistoryRow[], unit: string): string {
  const out: string[] = [];
  for (let v = 0; v <= f.max + 1e-9; v += f.step) {
    const y = f.y(v).toFixed(1);
    out.push(`<line x1="${f.x0}" x2="${f.x1}" y1="${y}" y2="${y}" stroke="#e0e0e0"/>`);
    out.push(`<text x="${f.x0 - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" class="tick">${fmt(v)}</text>`);
  }
  out.push(`<text x="12" y="${(f.y0 + f.y1) / 2}" transform="rotate(-90 12 ${(f.y0 + f.y1) / 2})" text-anchor="middle" class="unit">${escapeHtml(unit)}</text>`);
  // A label under every bar when there is room, else under every k-th (and always tonight's).
  const every = Math.max(1, Math.ceil(rows.length / 12));
  rows.forEach((r, i) => {
    if (i % every !== 0 && i !== rows.length - 1) return;
    const x = (f.x0 + f.band * (i + 0.5)).toFixed(1);
    out.push(`<text x="${x}" y="${f.y0 + 16}" text-anchor="middle" class="tick">${escapeHtml(label(r))}</text>`);
  });
  out.push(`<line x1="${f.x0}" x2="${f.x1}" y1="${f.y0}" y2="${f.y0}" stroke="#616161"/>`);
  return out.join('');
}

function legend(items: Array<[string, string]>): string {
  let x = M.left;
  return items
    .map(([name, colour]) => {
      const s = `<rect x="${x}" y="${HEIGHT - 14}" width="10" height="10" fill="${colour}"/><text x="${x + 14}" y="${HEIGHT - 5}" class="tick">${escapeHtml(name)}</text>`;
      x += 24 + name.length * 7;
      return s;
    })
    .join('');
}

function svg(id: string, title: string, body: string): string {
  return (
    `<svg id="${id}" class="chart" role="img" aria-label="${escapeHtml(title)}" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" xmlns="http://www.w3.org/2000/svg">` +
    `<title>${escapeHtml(title)}</title>${body}</svg>`
  );
}

/** Tests passed, failed and skipped, night by night: one stacked bar each, tonight's outlined. */
export function passFailChart(rows: readonly NightHistoryRow[]): string {
  const max = Math.max(1, ...rows.map((r) => r.passed + r.failed + r.skipped));
  const f = frame(rows.length, max, true);
  const bars: string[] = [];
  rows.forEach((r, i) => {
    const w = barWidth(f);
    const x = f.x0 + f.band * i + (f.band - w) / 2;
    let base = 0;
    for (const [kind, n] of [['pass', r.passed], ['fail', r.failed], ['skip', r.skipped]] as const) {
      if (n <= 0) continue;
      const yTop = f.y(base + n);
      const h = f.y(base) - yTop;
      bars.push(
        `<rect class="bar ${kind}" data-night="${escapeHtml(r.night)}" data-count="${n}" x="${x.toFixed(1)}" y="${yTop.toFixed(1)}" width="${w.toFixed(1)}" height="${Math.max(0.5, h).toFixed(1)}" fill="${COLOURS[kind]}">` +
          `<title>night ${escapeHtml(r.night)}: ${n} ${kind === 'pass' ? 'passed' : kind === 'fail' ? 'failed' : 'skipped'}</title></rect>`,
      );
      base += n;
    }
    if (i === rows.length - 1) {
      bars.push(`<rect x="${(x - 2).toFixed(1)}" y="${(f.y(base) - 2).toFixed(1)}" width="${(w + 4).toFixed(1)}" height="${(f.y(0) - f.y(base) + 2).toFixed(1)}" fill="none" stroke="#212121" stroke-dasharray="3 2"/>`);
    }
  });
  return svg('chart-results', 'Tests passed, failed and skipped per night', axes(f, rows, 'tests') + bars.join('') + legend([['passed', COLOURS.pass], ['failed', COLOURS.fail], ['skipped', COLOURS.skip]]));
}

function nightSeconds(r: NightHistoryRow): number | null {
  if (r.finished === null) return null;
  const d = Date.parse(r.finished) - Date.parse(r.started);
  return Number.isFinite(d) && d >= 0 ? d / 1000 : null;
}

/** The unit the durations read best in: seconds for nights of a few minutes (the simulated host's), hours for long ones. */
function durationUnit(maxSeconds: number): { name: string; seconds: number } {
  if (maxSeconds < 180) return { name: 'seconds', seconds: 1 };
  if (maxSeconds < 3 * 3600) return { name: 'minutes', seconds: 60 };
  return { name: 'hours', seconds: 3600 };
}

/** How long each night took from start to end (bars), and how long its tests ran, all domains summed (line). */
export function durationChart(rows: readonly NightHistoryRow[]): string {
  const unit = durationUnit(Math.max(0, ...rows.map((r) => nightSeconds(r) ?? 0), ...rows.map((r) => r.testSeconds)));
  const nights = rows.map((r) => {
    const s = nightSeconds(r);
    return s === null ? null : s / unit.seconds;
  });
  const tests = rows.map((r) => r.testSeconds / unit.seconds);
  const max = Math.max(1e-9, ...nights.map((n) => n ?? 0), ...tests);
  const f = frame(rows.length, max, false);
  const short = unit.name === 'seconds' ? 's' : unit.name === 'minutes' ? 'min' : 'h';
  const marks: string[] = [];
  rows.forEach((r, i) => {
    const n = nights[i];
    if (n === null || n === undefined) return;
    const w = barWidth(f);
    const x = f.x0 + f.band * i + (f.band - w) / 2;
    marks.push(
      `<rect class="bar night" data-night="${escapeHtml(r.night)}" x="${x.toFixed(1)}" y="${f.y(n).toFixed(1)}" width="${w.toFixed(1)}" height="${Math.max(0.5, f.y(0) - f.y(n)).toFixed(1)}" fill="${COLOURS.night}" fill-opacity="0.55">` +
        `<title>night ${escapeHtml(r.night)}: ${fmt(n)} ${short} from start to end</title></rect>`,
    );
  });
  const at = (i: number): string => (f.x0 + f.band * (i + 0.5)).toFixed(1);
  if (tests.length > 1) marks.push(`<polyline points="${tests.map((m, i) => `${at(i)},${f.y(m).toFixed(1)}`).join(' ')}" fill="none" stroke="${COLOURS.tests}" stroke-width="2"/>`);
  tests.forEach((m, i) => {
    const r = rows[i] as NightHistoryRow;
    marks.push(
      `<circle class="point tests" data-night="${escapeHtml(r.night)}" cx="${at(i)}" cy="${f.y(m).toFixed(1)}" r="3.5" fill="${COLOURS.tests}">` +
        `<title>night ${escapeHtml(r.night)}: tests ran ${fmt(m)} ${short} (all domains)</title></circle>`,
    );
  });
  return svg('chart-durations', `Night and test durations per night, in ${unit.name}`, axes(f, rows, unit.name) + marks.join('') + legend([['night, start to end', COLOURS.night], ['tests, all domains', COLOURS.tests]]));
}
