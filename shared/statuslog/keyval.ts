/**
 * autotest keyval files: `key=value` lines.
 *
 * Source of truth: autotest/autotest client/shared/base_utils.py (the same
 * code is in client/shared/utils.py):
 *
 *   write_keyval(path, dictionary, type_tag=None):
 *     path is a directory -> path/keyval; opened with 'a';
 *     type_tag None: every key must match ^[-\.\w]+$
 *     type_tag 'attr' or 'perf' (nothing else): ^[-\.\w]+\{<tag>\}$
 *     for key in sorted(dictionary.keys()): write '%s=%s\n' % (key, value)
 *
 *   read_keyval(path):
 *     path is a directory -> path/keyval; a missing file gives {};
 *     for each line: re.sub('#.*', '', line).rstrip();
 *     it must match ^[-\.\w]+= or ValueError('Invalid format line: ...');
 *     key, value = line.split('=', 1);
 *     value ^\d+$ -> int, ^(\d+\.)?\d+$ -> float, anything else stays a string.
 *
 * and client/shared/test.py write_iteration_keyval, which writes the attr
 * keyvals, then the perf keyvals, then an empty line that ends the iteration
 * (tko/models.py iteration.load_from_keyval splits iterations on blank lines).
 *
 * \w is Python 2's on a byte string: [A-Za-z0-9_].
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { appendRecordToFile, type SyncMode } from './durable.js';
import { StatusLogUsageError } from './entry.js';

export type KeyvalTypeTag = 'attr' | 'perf';
/** What readKeyval gives back: int (bigint past 2^53), float, or string. */
export type KeyvalValue = string | number | bigint;
/** Values accepted for writing. Booleans are written as Python would (True/False). */
export type KeyvalInputValue = string | number | bigint | boolean;
/** Ordered pairs or a Map. Plain objects are refused: their integer-like keys would be reordered. */
export type KeyvalEntries = Iterable<readonly [string, KeyvalInputValue]>;

export const KEYVAL_KEY_RE = /^[-.A-Za-z0-9_]+$/;

export interface WriteKeyvalOptions {
  /**
   * 'sorted' (default) writes the keys in sorted order, as autotest does
   * (`for key in sorted(dictionary.keys())`, byte order; our keys are ASCII
   * so code-unit order is the same); 'given' keeps the caller's order.
   */
  order?: 'sorted' | 'given';
  /** Default 'fdatasync'. */
  sync?: SyncMode;
}

/** A keyval file line autotest's read_keyval would reject. */
export class KeyvalFormatError extends Error {
  override readonly name = 'KeyvalFormatError';
  constructor(
    message: string,
    readonly file: string | undefined,
    /** 1-based. */
    readonly line: number,
  ) {
    super(message);
  }
}

function checkTypeTag(typeTag: unknown): asserts typeTag is KeyvalTypeTag | undefined {
  if (typeTag !== undefined && typeTag !== 'attr' && typeTag !== 'perf') {
    // autotest: ValueError('Invalid type tag: %s')
    throw new StatusLogUsageError(`Invalid type tag: ${String(typeTag)}`);
  }
}

/**
 * A value as Python's '%s' would print it, made safe for a line-based file:
 * CR LF, LF and CR become one space each (autotest writes them as they are,
 * which breaks the line into two, the second of which read_keyval rejects).
 * Integers are written in plain decimal; other numbers as JavaScript prints
 * them (Python 2's str(float) would round to 12 significant digits; we keep
 * every digit, and float() reads both); NaN/Infinity as Python writes them.
 */
export function formatKeyvalValue(value: KeyvalInputValue): string {
  let s: string;
  switch (typeof value) {
    case 'string':
      s = value;
      break;
    case 'bigint':
      s = value.toString();
      break;
    case 'boolean':
      s = value ? 'True' : 'False';
      break;
    case 'number':
      if (Number.isNaN(value)) s = 'nan';
      else if (value === Infinity) s = 'inf';
      else if (value === -Infinity) s = '-inf';
      else s = Number.isInteger(value) ? BigInt(value).toString() : String(value);
      break;
    default:
      throw new StatusLogUsageError(`keyval value must be a string, number, bigint or boolean, not ${typeof value}`);
  }
  return s.replace(/\r\n|[\r\n]/g, ' ');
}

/**
 * The text writeKeyval appends. With a type tag, a key may be given with or
 * without its `{tag}` suffix; without one it gets the suffix (as autotest's
 * test._append_type_to_keys adds it before calling write_keyval).
 */
export function formatKeyval(
  entries: KeyvalEntries,
  typeTag?: KeyvalTypeTag,
  options: Pick<WriteKeyvalOptions, 'order'> = {},
): string {
  checkTypeTag(typeTag);
  if (entries === null || typeof (entries as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== 'function') {
    throw new StatusLogUsageError('keyval entries must be an array of [key, value] pairs or a Map, not a plain object');
  }
  const suffix = typeTag === undefined ? '' : `{${typeTag}}`;
  const lines: [string, string][] = [];
  const seen = new Set<string>();
  for (const pair of entries) {
    if (!Array.isArray(pair) || pair.length !== 2) {
      throw new StatusLogUsageError('each keyval entry must be a [key, value] pair');
    }
    const [rawKey, value] = pair as [unknown, KeyvalInputValue];
    if (typeof rawKey !== 'string') throw new StatusLogUsageError(`Invalid key: ${String(rawKey)}`);
    let key = rawKey;
    if (suffix !== '' && key.endsWith(suffix)) key = key.slice(0, -suffix.length);
    if (!KEYVAL_KEY_RE.test(key)) {
      // autotest: ValueError('Invalid key: %s')
      throw new StatusLogUsageError(`Invalid key: ${rawKey}`);
    }
    key += suffix;
    if (seen.has(key)) throw new StatusLogUsageError(`key ${key} given twice`);
    seen.add(key);
    lines.push([key, formatKeyvalValue(value)]);
  }
  if ((options.order ?? 'sorted') === 'sorted') lines.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return lines.map(([k, v]) => `${k}=${v}\n`).join('');
}

function keyvalPath(p: string): string {
  try {
    if (fs.statSync(p).isDirectory()) return path.join(p, 'keyval');
  } catch {
    // missing: use the path as given
  }
  return p;
}

/**
 * Append keyvals the way autotest's write_keyval does, as one write(2) and
 * one fdatasync per call. Invalid keys are refused before anything is
 * written. If `file` is a directory, its `keyval` file is used.
 */
export function writeKeyval(
  file: string,
  entries: KeyvalEntries,
  typeTag?: KeyvalTypeTag,
  options: WriteKeyvalOptions = {},
): void {
  const text = formatKeyval(entries, typeTag, options);
  appendRecordToFile(keyvalPath(file), Buffer.from(text, 'utf8'), options.sync ?? 'fdatasync');
}

/**
 * One test iteration's keyvals, as autotest's test.write_iteration_keyval
 * writes them to results/keyval: the attr keyvals ({attr}), the perf keyvals
 * ({perf}), then an empty line that ends the iteration — here as a single
 * write.
 */
export function writeIterationKeyval(
  file: string,
  iteration: { attr?: KeyvalEntries; perf?: KeyvalEntries },
  options: WriteKeyvalOptions = {},
): void {
  const text =
    (iteration.attr ? formatKeyval(iteration.attr, 'attr', options) : '') +
    (iteration.perf ? formatKeyval(iteration.perf, 'perf', options) : '') +
    '\n';
  appendRecordToFile(keyvalPath(file), Buffer.from(text, 'utf8'), options.sync ?? 'fdatasync');
}

/** Python 2 str.rstrip() whitespace (byte strings). */
const PY2_TRAILING_SPACE = /[ \t\n\r\v\f]+$/;
const TAGGED_LINE = /^([-.A-Za-z0-9_]+)\{([A-Za-z0-9_]*)\}=([\s\S]*)$/;
const PLAIN_LINE = /^([-.A-Za-z0-9_]+)=([\s\S]*)$/;

/** read_keyval's conversion: ^\d+$ -> int, ^(\d+\.)?\d+$ -> float, else the string. */
export function convertKeyvalValue(value: string): KeyvalValue {
  if (/^[0-9]+$/.test(value)) {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : BigInt(value);
  }
  if (/^([0-9]+\.)?[0-9]+$/.test(value)) return Number(value);
  return value;
}

/**
 * Parse keyval text as autotest's read_keyval does, with two documented
 * extensions:
 *
 *  - blank lines (after comment removal) are skipped; autotest/autotest's
 *    read_keyval raises on them, although its own write_iteration_keyval
 *    writes them (later autotest forks skip them too);
 *  - typed keys `key{tag}=value` are accepted (autotest's read_keyval raises
 *    on them). Without `typeTag` they are returned under their full name,
 *    suffix included (`key{perf}`); with `typeTag` only the lines with that
 *    tag are returned, under the bare key, and every other valid line is
 *    skipped.
 *
 * Comments: everything from the first '#' to the end of the line is removed,
 * even inside a value (autotest does the same). Then trailing whitespace is
 * removed. A line that is not `key=value` with key [-.A-Za-z0-9_]+ throws
 * KeyvalFormatError('Invalid format line: ...'). A later key wins.
 */
export function parseKeyval(text: string, typeTag?: KeyvalTypeTag, file?: string): Map<string, KeyvalValue> {
  checkTypeTag(typeTag);
  const out = new Map<string, KeyvalValue>();
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((raw, index) => {
    const line = raw.replace(/#[^\n]*/, '').replace(PY2_TRAILING_SPACE, '');
    if (line === '') return;
    let key: string;
    let value: string;
    let tag: string | undefined;
    const typed = TAGGED_LINE.exec(line);
    if (typed) {
      [, key, tag, value] = typed as unknown as [string, string, string, string];
    } else {
      const plain = PLAIN_LINE.exec(line);
      if (!plain) throw new KeyvalFormatError(`Invalid format line: ${line}`, file, index + 1);
      [, key, value] = plain as unknown as [string, string, string];
    }
    if (typeTag !== undefined) {
      if (tag !== typeTag) return;
    } else if (tag !== undefined) {
      key = `${key}{${tag}}`;
    }
    out.set(key, convertKeyvalValue(value));
  });
  return out;
}

/**
 * Read a keyval file (or a directory's `keyval`) like autotest's
 * read_keyval; see {@link parseKeyval}. A missing file gives an empty Map.
 */
export function readKeyval(file: string, typeTag?: KeyvalTypeTag): Map<string, KeyvalValue> {
  const p = keyvalPath(file);
  let text: string;
  try {
    text = fs.readFileSync(p, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw e;
  }
  return parseKeyval(text, typeTag, p);
}
