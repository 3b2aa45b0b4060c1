/**
 * The end of a log, for a failure in the morning report: what a person reads
 * first to see why. A log may be gigabytes (a test's output goes to it whole),
 * so only its last bytes are read; and it is a domain's, so it must not lead
 * out of that domain's results, and its bytes are shown as text, whatever
 * they are.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { containedExistingPath } from '../../../shared/contained.js';

export interface LogExcerpt {
  /** The log's path. */
  file: string;
  /** Its last lines. */
  text: string;
  /** Lines before these were left out. */
  cut: boolean;
}

export const EXCERPT_LINES = 40;
const EXCERPT_BYTES = 16 * 1024;

/** Control characters other than TAB and newline would garble a terminal or a page: each becomes U+FFFD. */
function printable(s: string): string {
  return s.replace(/\r\n/g, '\n').replace(/\r/g, '\n').replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '\uFFFD');
}

/** The last `lines` lines of `file` (at most EXCERPT_BYTES of them), or null when it cannot be read. */
export function tailOf(file: string, lines = EXCERPT_LINES): LogExcerpt | null {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(0, size - EXCERPT_BYTES);
    const buf = Buffer.alloc(size - start);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, start + got);
      if (n === 0) break;
      got += n;
    }
    let text = printable(buf.subarray(0, got).toString('utf8'));
    let cut = start > 0;
    // A read that starts mid-file starts mid-line (and maybe mid-character): that line goes.
    if (cut) text = text.slice(text.indexOf('\n') + 1);
    const all = text.replace(/\n$/, '').split('\n');
    if (all.length > lines) cut = true;
    return { file, text: all.slice(-lines).join('\n'), cut };
  } finally {
    closeSync(fd);
  }
}

/** The excerpt of the first of `candidates` (paths relative to `base`) that exists inside `base` and is not empty. */
export function firstExcerpt(base: string, candidates: readonly string[]): LogExcerpt | null {
  for (const rel of candidates) {
    const file = containedExistingPath(base, rel);
    if (file === null) continue;
    const e = tailOf(file);
    if (e && e.text.trim() !== '') return e;
  }
  return null;
}
