/**
 * A progress display for downloads: on a terminal, one line redrawn in place
 * (at most ten times a second); anywhere else (journald, a log file), a plain
 * line at every 10% (or every 16 MiB when the size is unknown), so a log shows
 * that a long download is moving without being flooded.
 */
import { archiveName } from './tarball-cache.js';
import { formatBytes, type FetchProgress } from './options.js';

/** Where progress goes: process.stderr, or any stream with write() (isTTY says whether to redraw in place). */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

const REDRAW_MS = 100;
const BAR_WIDTH = 24;
const UNKNOWN_STEP = 16 * 1024 * 1024;

interface TransferState {
  lastDraw: number;
  /** Plain mode: the last tenth (or 16 MiB step) printed. */
  lastStep: number;
}

function percent(p: FetchProgress): number | undefined {
  if (p.totalBytes === undefined || p.totalBytes <= 0) return undefined;
  return Math.min(100, Math.floor((p.receivedBytes / p.totalBytes) * 100));
}

function barLine(p: FetchProgress, width: number | undefined): string {
  const name = archiveName(p.url);
  const pct = percent(p);
  let line: string;
  if (pct === undefined) {
    line = `${name} ${formatBytes(p.receivedBytes)}${p.done ? ' done' : ''}`;
  } else {
    const filled = Math.round((pct / 100) * BAR_WIDTH);
    line = `${name} [${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${String(pct).padStart(3)}% ${formatBytes(p.receivedBytes)} of ${formatBytes(p.totalBytes as number)}`;
  }
  return width !== undefined && width > 1 && line.length >= width ? line.slice(0, width - 1) : line;
}

/** A `progress` callback for FetchOptions that draws on `stream`. */
export function terminalProgress(stream: ProgressStream, now: () => number = Date.now): (p: FetchProgress) => void {
  const transfers = new Map<string, TransferState>();
  return (p: FetchProgress): void => {
    let state = transfers.get(p.url);
    if (!state) {
      state = { lastDraw: -Infinity, lastStep: 0 };
      transfers.set(p.url, state);
    }
    if (p.done) transfers.delete(p.url);

    if (stream.isTTY) {
      const t = now();
      if (!p.done && t - state.lastDraw < REDRAW_MS) return;
      state.lastDraw = t;
      stream.write(`\r${barLine(p, stream.columns)}\x1b[K${p.done ? '\n' : ''}`);
      return;
    }

    const name = archiveName(p.url);
    const pct = percent(p);
    if (pct !== undefined) {
      const tenth = Math.floor(pct / 10);
      if (tenth > state.lastStep) {
        state.lastStep = tenth;
        stream.write(`${name}: ${tenth * 10}% (${formatBytes(p.receivedBytes)} of ${formatBytes(p.totalBytes as number)})\n`);
      }
      return;
    }
    if (p.done) {
      stream.write(`${name}: done, ${formatBytes(p.receivedBytes)}\n`);
      return;
    }
    const step = Math.floor(p.receivedBytes / UNKNOWN_STEP);
    if (step > state.lastStep) {
      state.lastStep = step;
      stream.write(`${name}: ${formatBytes(p.receivedBytes)} so far\n`);
    }
  };
}
