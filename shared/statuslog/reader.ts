/**
 * Reading status.log lines back, as the writer (writer.ts, entry.ts) writes
 * them: tabs for the nesting level, then STATUS, subdir, operation, any
 * key=value fields, and the message last. Continuation lines of a multi-line
 * message (two spaces, then the text) are joined onto it.
 *
 * This is the plain reading the agent needs for its own summaries; it does
 * not reproduce TKO's recovery from malformed logs.
 */
import { RENDERED_NONE } from './entry.js';

export interface StatusLine {
  /** Nesting level: 0 for a job's own lines, 1 inside one group, ... */
  indent: number;
  /** START, INFO, GOOD, ..., or END GOOD, END FAIL, ... */
  code: string;
  subdir: string | null;
  operation: string | null;
  fields: Map<string, string>;
  message: string;
  /** 1-based line number of the entry in the file. */
  line: number;
}

const ENTRY_RE = /^(\t*)([^\t]+)\t([^\t]*)\t([^\t]*)(?:\t(.*))?$/;

export function parseStatusLog(text: string): StatusLine[] {
  const out: StatusLine[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] as string;
    if (raw === '') continue;
    const prev = out[out.length - 1];
    const m = ENTRY_RE.exec(raw);
    if (!m || !/^(START|INFO|END [A-Z_]+|[A-Z_]+)$/.test(m[2] as string)) {
      // A continuation of the previous entry's message.
      if (prev) prev.message += '\n' + raw.replace(/^ {2}/, '');
      continue;
    }
    const rest = m[5] === undefined ? [] : (m[5] as string).split('\t');
    const message = rest.length > 0 ? (rest.pop() as string) : '';
    const fields = new Map<string, string>();
    for (const f of rest) {
      const eq = f.indexOf('=');
      if (eq > 0) fields.set(f.slice(0, eq), f.slice(eq + 1));
    }
    const none = (s: string): string | null => (s === RENDERED_NONE ? null : s);
    out.push({
      indent: (m[1] as string).length,
      code: m[2] as string,
      subdir: none(m[3] as string),
      operation: none(m[4] as string),
      fields,
      message,
      line: i + 1,
    });
  }
  return out;
}
