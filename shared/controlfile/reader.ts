/**
 * Reads control files exactly as Python 3's `configparser.ConfigParser()`
 * does with its default settings (RawConfigParser._read in CPython 3.11):
 * `=`/`:` delimiters, `#`/`;` full-line comments, no inline comments, strict
 * duplicates, empty lines kept inside values, indented continuation lines.
 *
 * Python stops at the first duplicate or missing header and defers syntax
 * errors to the end of the file. We read on past all of them so that
 * `xentest check` can report every problem at once, and keep Python's order so
 * that `pythonError()` is the exception Python would have raised.
 */
import { readFileSync } from 'node:fs';
import { ConfigDocument, DEFAULT_SECTION, type RawOption, type RawSection } from './document.js';
import {
  ConfigError,
  duplicateOption,
  duplicateSection,
  missingSectionHeader,
  parsingError,
  type BadLine,
} from './errors.js';
import { linesReadBeforeFailure, pythonUtf8Failure, type Utf8Failure } from './pydecode.js';
import { firstNonSpace, pyLower, pyRstrip, pyStrip } from './pystring.js';

export interface ReadResult {
  readonly doc: ConfigDocument;
  /** Duplicates and a missing header, in file order. Python raises the first one. */
  readonly fatal: readonly ConfigError[];
  /** Lines Python rejects; it raises one ParsingError for all of them at the end. */
  readonly badLines: readonly BadLine[];
}

/** The error Python raises while reading, if any. */
export function pythonReadError(result: ReadResult): ConfigError | undefined {
  const first = result.fatal[0];
  if (first) return first;
  if (result.badLines.length > 0) return parsingError(result.doc.file, result.badLines);
  return undefined;
}

/**
 * Split like Python's universal-newlines text mode: \r\n, \r and \n end a
 * line, and each line keeps its ending (translated to \n) as Python's do.
 */
function splitLines(text: string): string[] {
  const parts = text.split(/\r\n|\r|\n/);
  const lines = new Array<string>(parts.length);
  const last = parts.length - 1;
  for (let i = 0; i < last; i++) lines[i] = parts[i] + '\n';
  if (parts[last] !== '') lines[last] = parts[last] as string;
  else lines.length = last;
  return lines;
}

function newSection(name: string, file: string, line: number): RawSection {
  return { name, file, line, options: new Map() };
}

/** A pending value: the option it belongs to and its lines, joined at the end. */
interface Pending {
  option: RawOption;
  parts: string[];
}

export function readControlText(text: string, file: string): ReadResult {
  const defaults = newSection(DEFAULT_SECTION, file, 0);
  const sections = new Map<string, RawSection>();
  const fatal: ConfigError[] = [];
  const badLines: BadLine[] = [];
  const pending: Pending[] = [];
  // Python's elements_added: the options defined so far in each section (by
  // section name, so the two [DEFAULT] blocks share one set), and the sections
  // opened. Kept per section rather than as joined "section<sep>option" keys:
  // names may contain any character, NUL included, so no separator is safe.
  const added = new Map<string, Set<string>>();
  const addedSections = new Set<string>();

  let cursect: RawSection | undefined;
  let current: Pending | undefined; // Python's `optname`, when truthy
  let missingHeaderReported = false;
  let indentLevel = 0;

  const lines = splitLines(text);
  if (text.charCodeAt(0) === 0xfeff) {
    // Python keeps a UTF-8 byte-order mark as a character, so the first line is
    // never a header and it raises MissingSectionHeaderError at line 1. Report
    // that, then read on without the mark so that checking can go further.
    fatal.push(missingSectionHeader(file, 1, lines[0] as string));
    missingHeaderReported = true;
    lines[0] = (lines[0] as string).slice(1);
  }
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const lineno = i + 1;
    const value = pyStrip(line);
    if (value.length === 0) {
      // An empty line belongs to the value being read (trailing ones are dropped at the join).
      if (current) current.parts.push('');
      continue;
    }
    const c0 = value.charCodeAt(0);
    if (c0 === 0x23 /* # */ || c0 === 0x3b /* ; */) continue; // comment lines change nothing

    const indent = firstNonSpace(line);
    if (cursect && current && indent > indentLevel) {
      current.parts.push(value);
      continue;
    }
    indentLevel = indent;

    const header = sectionHeader(value);
    if (header !== undefined) {
      current = undefined;
      const existing = sections.get(header);
      if (existing) {
        if (addedSections.has(header)) fatal.push(duplicateSection(file, lineno, header));
        cursect = existing;
      } else if (header === DEFAULT_SECTION) {
        cursect = defaults;
        if (defaults.line === 0) defaults.line = lineno;
      } else {
        cursect = newSection(header, file, lineno);
        sections.set(header, cursect);
        addedSections.add(header);
      }
      continue;
    }

    if (!cursect) {
      // Python raises here at once; we report it once and skip until a header.
      if (!missingHeaderReported) fatal.push(missingSectionHeader(file, lineno, line));
      missingHeaderReported = true;
      continue;
    }

    const delim = firstDelimiter(value);
    if (delim < 0) {
      badLines.push({ line: lineno, text: line });
      continue;
    }
    const rawName = value.slice(0, delim);
    // Python records the error for an empty name and still defines the option ''.
    if (pyRstrip(rawName).length === 0) badLines.push({ line: lineno, text: line });
    const name = pyLower(pyRstrip(rawName));
    let addedHere = added.get(cursect.name);
    if (!addedHere) added.set(cursect.name, (addedHere = new Set()));
    if (addedHere.has(name)) fatal.push(duplicateOption(file, lineno, cursect.name, name));
    addedHere.add(name);
    const option: RawOption = { name, value: '', file, line: lineno };
    cursect.options.set(name, option);
    const entry: Pending = { option, parts: [pyStrip(value.slice(delim + 1))] };
    pending.push(entry);
    current = name.length > 0 ? entry : undefined;
  }

  for (const p of pending) p.option.value = p.parts.length === 1 ? (p.parts[0] as string) : pyRstrip(p.parts.join('\n'));

  return { doc: new ConfigDocument(file, defaults, sections), fatal, badLines };
}

/** SECTCRE `\[(?P<header>.+)\]` matched (not fullmatched) against the stripped line. */
function sectionHeader(value: string): string | undefined {
  if (value.charCodeAt(0) !== 0x5b /* [ */) return undefined;
  const close = value.lastIndexOf(']');
  return close >= 2 ? value.slice(1, close) : undefined;
}

/**
 * OPTCRE's non-greedy name means the first `=` or `:` is the delimiter; the
 * whitespace before it belongs to neither side.
 */
function firstDelimiter(value: string): number {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x3d /* = */ || c === 0x3a /* : */) return i;
  }
  return -1;
}

/** Python's `open(path, encoding='utf-8')` decodes strictly and keeps a BOM as U+FEFF. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function tryDecode(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

function utf8Failure(bytes: Uint8Array): Utf8Failure {
  const failure = pythonUtf8Failure(bytes);
  // TextDecoder and CPython accept exactly the same byte sequences (the Unicode definition of UTF-8).
  if (!failure) throw new Error('TextDecoder rejected bytes that Python decodes');
  return failure;
}

function unicodeDecodeError(bytes: Uint8Array, file: string, failure: Utf8Failure): ConfigError {
  // Line endings are ASCII, so counting them in the raw bytes gives the line of the bad byte.
  let line = 1;
  for (let i = 0; i < failure.offset; i++) {
    const b = bytes[i];
    if (b === 0x0a || (b === 0x0d && bytes[i + 1] !== 0x0a)) line++;
  }
  return new ConfigError('UnicodeDecodeError', failure.message, file, line, 'save the control file as UTF-8');
}

/**
 * Read control-file bytes as Python reads the file. Python decodes while it
 * reads lines, so for bytes that are not UTF-8 the lines before the chunk
 * that fails have already been read, and an error configparser raises on one
 * of them (a missing header, a duplicate) comes first. Either way there is
 * nothing to go on with: this throws the error Python raises.
 */
export function readControlBytes(bytes: Uint8Array, file: string): ReadResult {
  const text = tryDecode(bytes);
  if (text !== undefined) return readControlText(text, file);
  const failure = utf8Failure(bytes);
  const before = readControlText(linesReadBeforeFailure(strictUtf8.decode(bytes.subarray(0, failure.decoded))), file);
  throw before.fatal[0] ?? unicodeDecodeError(bytes, file, failure);
}

/** Read a control file; throws only when it cannot be read or decoded at all (see readControlBytes). */
export function readControlFileLenient(path: string): ReadResult {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw new ConfigError(
      'FileNotFoundError',
      `cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : code}`,
      path,
      0,
      'give the path of an existing control file',
    );
  }
  return readControlBytes(bytes, path);
}

/** Read a control file as Python would, throwing the ConfigError Python would raise. */
export function readControlFile(path: string): ConfigDocument {
  const result = readControlFileLenient(path);
  const err = pythonReadError(result);
  if (err) throw err;
  return result.doc;
}
