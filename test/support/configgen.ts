/**
 * A seeded generator of control files for the differential tests against
 * Python's configparser. The same seed always gives the same bytes (no
 * Math.random anywhere), so a failing file can be rebuilt from its name.
 *
 * About half of the files are "clean": they are built so that configparser
 * should read and interpolate them without error, while still using every
 * legal oddity (continuations, blank lines and comments inside values,
 * DEFAULT overrides, `%(name)s` chains, odd whitespace, CR line endings...).
 * Most of the others add one to three hazards, each aimed at one of the
 * errors Python can raise, and often at the order in which it raises them;
 * a few are "chaos": random strings of configparser's syntax characters.
 *
 * Every character used here means the same thing in Python 3.11 (Unicode 14)
 * and Node 20 (ICU, Unicode 15 and later): characters assigned after Unicode
 * 14 would be repr()'d differently (Python escapes unassigned code points)
 * and may lower-case differently, so none are used.
 */

import { mulberry32 } from '../../shared/random/mulberry32.js';

export class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  /** A float in [0, 1). */
  float(): number {
    return this.next();
  }
  /** An integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[Math.floor(this.next() * items.length)] as T;
  }
  /** Pick by weight: [[weight, value], ...]. */
  weighted<T>(choices: ReadonlyArray<readonly [number, T]>): T {
    const total = choices.reduce((s, [w]) => s + w, 0);
    let r = this.next() * total;
    for (const [w, v] of choices) {
      r -= w;
      if (r < 0) return v;
    }
    return (choices[choices.length - 1] as readonly [number, T])[1];
  }
}

export type Hazard =
  | 'chaos'
  | 'missingHeader'
  | 'bom'
  | 'badLine'
  | 'emptyName'
  | 'dupSection'
  | 'dupOption'
  | 'interpMissing'
  | 'interpSyntax'
  | 'interpDepth'
  | 'badUtf8';

const HAZARDS: ReadonlyArray<readonly [number, Hazard]> = [
  [6, 'missingHeader'],
  [2, 'bom'],
  [10, 'badLine'],
  [6, 'emptyName'],
  [8, 'dupSection'],
  [10, 'dupOption'],
  [9, 'interpMissing'],
  [9, 'interpSyntax'],
  [9, 'interpDepth'],
  [6, 'badUtf8'],
];

export interface GeneratedFile {
  readonly seed: number;
  /** `gen-<seed>.ini`: the seed rebuilds the file. */
  readonly name: string;
  readonly bytes: Uint8Array;
  /** Empty for a file meant to read cleanly; ['chaos'] for one strung together from syntax fragments. */
  readonly hazards: readonly Hazard[];
  /** Over 8192 bytes: Python decodes it in more than one chunk. */
  readonly big: boolean;
}

// ---------------------------------------------------------------------------
// Alphabets. Whitespace is Python's (str.isspace), some of it not JavaScript's
// idea of whitespace (U+001C, U+0085) and U+FEFF the other way round.

/** Python whitespace that may indent a line or pad a delimiter (never a line break in Python's text files). */
const WS = [' ', ' ', ' ', ' ', '\t', '\t', '\u00a0', '\u3000', '\u001c', '\u0085', '\u2028', '\u2003', '\f', '\v'];
/** Characters that look like space but are not whitespace to Python. */
const NOT_WS = ['\ufeff', '\u200b', '\u00ad', '\u180e'];

const NAME_WORDS = [
  'name', 'kernel', 'xen', 'dom0', 'domain', 'arch', 'Tests', 'BUILD', 'path', 'opts', 'timeout', 'url',
  'é', 'crème', 'ÉCOLE', 'straße', 'ΣΟΦΙΑ', 'σοφία', 'İstanbul', '\u212aelvin', 'kelvin', '日本', '😀', 'x',
  'a', 'B', 'c1', '1', '007', '__proto__', 'constructor', 'toString', 'has space', 'dot.ted', 'dash-ed',
  'nul\u0000byte', 'nb\u00a0sp name', 'ideo\u3000name', 'under_score', 'with [brackets]', 'per%cent', "it's",
  'say "hi"', 'back\\slash', 'paren)', 'semi;colon', 'hash#tag',
];

const VALUE_WORDS = [
  'yes', 'no', '1', '0', '4.17', '/usr/lib/xen', 'http://example.org/x?a=b&c=d', 'a=b', 'c:d', 'k = v',
  '[not a header]', '#not a comment', ';nor this', '"quoted"', "'single'", 'back\\slash', 'tab\there',
  'nb\u00a0sp', 'ideo\u3000space', 'zero\u200bwidth', 'bom\ufeffinside', 'nel\u0085inside', 'ls\u2028inside',
  'fs\u001cinside', 'Ünïcödé', '日本語', 'emoji 😀🎉', 'ΣΟΦΙΑΣ', 'x)y', '(paren)', 'ends with s', '%%', '100%%',
  '\u0000nul', 'del\u007f', 'c1\u0080ctl', '\\n', '{"json": true}', 'a:b=c', '=', ':', '==', '::',
];

const SECTION_NAMES = [
  'main', 'Main', 'MAIN', 'xen build', 'test 1', 'test-2', '1', '2', '10', '007', '0', ' a ', 'a]b', ' DEFAULT ',
  'default', 'Default', 'ünïcode', '日本', 'emoji 😀', 'tab\there', 'nb\u00a0sp', '__proto__', 'constructor',
  'x=y', 'k: v', '#hash', ';semi', '%(x)s', "quote'", '"dq"', 'back\\slash', '[nested]', 'domain dom0',
  'test ltp', 'ALL', 'x', 'ΣΟΦΙΑ', 'nul\u0000section',
];

const JUNK_LINES = [
  'no delimiter here', '[]', '[unclosed', ']', 'key only', 'a b c', '%(x)s', '"quoted"', '[ ]x', '\u00a0word',
  'ΣΟΦΙΑ', '😀', 'x\u2028y',
];

/**
 * Fragments for "chaos" files: short random strings of the characters that
 * mean something to configparser, with no structure at all. They reach the
 * corners the structured files are too polite to visit.
 */
const CHAOS = [
  '[', ']', '=', ':', '#', ';', '%', '%', '(', ')', 's', ' ', ' ', '\t', '\n', '\n', '\n', '\r', '\r\n', '\u0085',
  '\u00a0', '\u3000', '\u2028', '\u001c', '\ufeff', '\u0000', 'a', 'a', 'b', 'A', 'Σ', 'é', '😀', 'DEFAULT',
  '[s]\n', '[DEFAULT]\n', '%(a)s', '%(A)s', '%(b)s', 'a=', 'b:', '\n  ', '\n\t',
];

const COMMENT_TEXTS = [
  '# comment', '; comment', '#', ';', '#key = value', ';[section]', '# é 😀', '#\tTAB', ';; double',
];

// ---------------------------------------------------------------------------

interface SectionState {
  /** The name as Python stores it; 'DEFAULT' for the defaults. */
  readonly name: string;
  /** Lower-cased option names already defined in this section. */
  readonly options: Set<string>;
}

/** What Python would take as the section name of a header line (SECTCRE on the stripped line). */
function effectiveSectionName(headerLine: string): string | undefined {
  const v = headerLine.replace(/^[\s\u001c-\u001f\u0085]+|[\s\u001c-\u001f\u0085]+$/gu, '');
  if (!v.startsWith('[')) return undefined;
  const close = v.lastIndexOf(']');
  return close >= 2 ? v.slice(1, close) : undefined;
}

class Generator {
  readonly rng: Rng;
  readonly clean: boolean;
  readonly hazards: Set<Hazard>;
  readonly big: boolean;
  readonly lines: string[] = [];

  private readonly sections = new Map<string, SectionState>();
  private readonly defaults: SectionState = { name: 'DEFAULT', options: new Set() };
  private current: SectionState | undefined;
  /** Python's indent_level: the indentation of the last line that was not a continuation. */
  private indentLevel = 0;
  /** Python's truthy optname: a continuation line here would extend the last option. */
  private inValue = false;
  /** Rank of each lower-cased option name; a clean value only refers to lower ranks, so never in a loop. */
  private readonly ranks = new Map<string, number>();

  constructor(readonly seed: number) {
    this.rng = new Rng(seed);
    const mode = this.rng.weighted([
      [50, 'clean'],
      [42, 'hazards'],
      [8, 'chaos'],
    ] as const);
    this.clean = mode === 'clean';
    this.hazards = new Set();
    if (mode === 'chaos') {
      this.hazards.add('chaos');
      if (this.rng.chance(0.2)) this.hazards.add('badUtf8');
    } else if (mode === 'hazards') {
      const n = this.rng.weighted([
        [6, 1],
        [3, 2],
        [1, 3],
      ] as const);
      for (let i = 0; i < n; i++) this.hazards.add(this.rng.weighted(HAZARDS));
    }
    this.big = this.rng.chance(0.1);
  }

  private has(h: Hazard): boolean {
    return this.hazards.has(h);
  }

  // --- pieces --------------------------------------------------------------

  private ws(min: number, max: number): string {
    let s = '';
    const n = this.rng.int(min, max);
    for (let i = 0; i < n; i++) s += this.rng.pick(WS);
    return s;
  }

  /** Spaces around a delimiter, or at the end of a line. */
  private pad(): string {
    return this.rng.weighted([
      [6, ''],
      [6, ' '],
      [1, '  '],
      [1, '\t'],
      [1, this.ws(1, 2)],
    ] as const);
  }

  private rank(lower: string): number {
    let r = this.ranks.get(lower);
    if (r === undefined) {
      r = this.ranks.size;
      this.ranks.set(lower, r);
    }
    return r;
  }

  /** A way of writing `lower` that configparser lower-cases back to it. */
  private spell(lower: string): string {
    const upper = lower.toUpperCase();
    if (upper.toLowerCase() !== lower || !this.rng.chance(0.35)) return lower;
    if (this.rng.chance(0.5)) return upper;
    return lower.charAt(0).toUpperCase() + lower.slice(1);
  }

  private newOptionName(): string {
    let name = this.rng.pick(NAME_WORDS);
    if (this.rng.chance(0.5)) name += this.rng.pick(['', '_', '.', ' ', '-']) + this.rng.int(0, 30);
    if (this.rng.chance(0.1)) name = this.rng.pick(NOT_WS) + name;
    return name;
  }

  /** A %(name)s reference that resolves (clean) or may not (dirty). */
  private reference(section: SectionState, ownRank: number): string | undefined {
    const visible = [...this.defaults.options, ...(section === this.defaults ? [] : section.options)].filter(
      (n) => !n.includes(')') && n.length > 0,
    );
    const usable = this.clean || !this.rng.chance(0.3)
      ? visible.filter((n) => {
          const r = this.ranks.get(n) ?? Infinity;
          // Lower ranks only, and only the first few names: chains stay well under the depth limit.
          return r < ownRank && r < 8;
        })
      : visible;
    if (usable.length === 0) return undefined;
    return `%(${this.spell(this.rng.pick(usable))})s`;
  }

  /** A raw value (one line); its interpolation is valid for a clean file. */
  private value(section: SectionState, ownRank: number): string {
    if (this.rng.chance(0.1)) return '';
    const parts: string[] = [];
    const n = this.rng.int(1, 4);
    for (let i = 0; i < n; i++) {
      const kind = this.rng.weighted([
        [10, 'word'],
        [2, 'percent'],
        [4, 'ref'],
        [1, 'space'],
      ] as const);
      if (kind === 'ref') {
        const ref = this.reference(section, ownRank);
        parts.push(ref ?? this.rng.pick(VALUE_WORDS));
      } else if (kind === 'percent') parts.push('%%');
      else if (kind === 'space') parts.push(this.ws(1, 3));
      else parts.push(this.rng.pick(VALUE_WORDS));
    }
    let v = parts.join(this.rng.pick([' ', '', ' ', ', ']));
    if (this.has('interpMissing') && this.rng.chance(0.15)) {
      v += ` %(${this.rng.pick(['nosuch', 'Missing_Key', 'ref 1'])})s`;
    }
    if (this.has('interpSyntax') && this.rng.chance(0.15)) {
      v += this.rng.pick(['%', ' 50% off', '%(unterminated', '%()s', '%(x)d', '%(x)', '%s', ' %x', '%%%', '%(a)S']);
    }
    return v;
  }

  private comment(): string {
    const indent = this.rng.chance(0.3) ? this.ws(1, 3) : '';
    return indent + this.rng.pick(COMMENT_TEXTS) + (this.rng.chance(0.3) ? ' ' + this.rng.pick(VALUE_WORDS) : '');
  }

  private blank(): string {
    return this.rng.weighted([
      [6, ''],
      [1, ' '],
      [1, '\t'],
      [1, this.ws(1, 3)],
    ] as const);
  }

  // --- lines -----------------------------------------------------------------

  /**
   * Indentation for a line that must NOT be a continuation: while a value
   * is open, no deeper than the line that opened it.
   */
  private lineIndent(): string {
    if (!this.rng.chance(0.15)) return '';
    const max = this.inValue ? this.indentLevel : 3;
    return max > 0 ? this.ws(1, max) : '';
  }

  private push(line: string, indent: number, continuation: boolean): void {
    this.lines.push(line);
    if (!continuation) this.indentLevel = indent;
  }

  private header(name: string, allowJunk: boolean): void {
    // The header text must give back exactly `name`: junk after ']' may not hold another ']'.
    let line = `[${name}]`;
    if (allowJunk && this.rng.chance(0.15)) {
      line += this.rng.pick([' trailing junk', '; not a comment', ' # x', '\tx=1', '[']);
    }
    if (this.rng.chance(0.15)) line += this.pad();
    const indent = this.lineIndent();
    this.push(indent + line, indent.length, false);
    this.inValue = false;
  }

  private openSection(name: string): SectionState {
    if (name === 'DEFAULT') {
      this.current = this.defaults;
      return this.defaults;
    }
    let s = this.sections.get(name);
    if (!s) {
      s = { name, options: new Set() };
      this.sections.set(name, s);
    }
    this.current = s;
    return s;
  }

  /** `name = value` with optional continuation lines; returns the lower-cased name. */
  private option(section: SectionState, forcedName?: string): string {
    let display = forcedName ?? this.newOptionName();
    let lower = display.replace(/[\s\u001c-\u001f\u0085]+$/u, '').toLowerCase();
    if (forcedName === undefined) {
      // A clean file never repeats a name within a section; it may override a DEFAULT one.
      if (section !== this.defaults && this.defaults.options.size > 0 && this.rng.chance(0.25)) {
        const candidates = [...this.defaults.options].filter((n) => !section.options.has(n) && n.length > 0);
        if (candidates.length > 0) {
          lower = this.rng.pick(candidates);
          display = this.spell(lower);
        }
      }
      while (section.options.has(lower) || lower.length === 0) {
        display = this.newOptionName() + '_' + this.rng.int(0, 9999);
        lower = display.toLowerCase();
      }
    }
    section.options.add(lower);
    const ownRank = this.rank(lower);
    const delim = this.rng.chance(0.6) ? '=' : ':';
    const indent = this.lineIndent();
    const value = this.value(section, ownRank);
    const trailing = this.rng.chance(0.15) ? this.pad() : '';
    this.push(indent + display + this.pad() + delim + this.pad() + value + trailing, indent.length, false);
    this.inValue = lower.length > 0;
    if (this.rng.chance(0.3)) this.continuation(section, ownRank, indent.length);
    return lower;
  }

  /** Lines that extend the value just opened: deeper indentation, blank lines, comments. */
  private continuation(section: SectionState, ownRank: number, optionIndent: number): void {
    const n = this.rng.int(1, 4);
    for (let i = 0; i < n; i++) {
      const kind = this.rng.weighted([
        [6, 'text'],
        [2, 'blank'],
        [1, 'comment'],
        [2, 'lookalike'],
      ] as const);
      if (kind === 'blank') this.lines.push(this.blank());
      else if (kind === 'comment') this.lines.push(this.comment());
      else {
        const indent = ' '.repeat(optionIndent) + this.ws(1, 3);
        const text =
          kind === 'text'
            ? this.value(section, ownRank)
            : this.rng.pick(['[looks like a header]', 'key = value', 'other: thing', '= no name', '[DEFAULT]']);
        // A continuation that strips to nothing is a blank line, which is fine too.
        this.push(indent + text + (this.rng.chance(0.1) ? this.pad() : ''), indent.length, true);
      }
    }
  }

  private noise(): void {
    const r = this.rng.float();
    if (r < 0.12) this.lines.push(this.comment());
    else if (r < 0.22) this.lines.push(this.blank());
  }

  // --- hazards ---------------------------------------------------------------

  private junkLine(): void {
    // Unindented, so it is never taken for a continuation line.
    this.push(this.rng.pick(JUNK_LINES), 0, false);
  }

  private emptyNameLine(section: SectionState): void {
    this.push(this.rng.pick(['= x', '=', ' : y', ':', '=%(a)s', '\u00a0= nbsp']), 0, false);
    section.options.add('');
    this.inValue = false;
    if (this.rng.chance(0.4)) this.push(this.rng.pick(['= again', ': again']), 0, false);
  }

  private cycle(section: SectionState): void {
    const names = ['cyc_a', 'cyc_b', 'cyc_c'].map((n) => n + this.rng.int(0, 99)).slice(0, this.rng.int(1, 3));
    names.forEach((n, i) => {
      const next = names[(i + 1) % names.length] as string;
      this.push(`${n} = x %(${next.toUpperCase()})s`, 0, false);
      section.options.add(n);
    });
    this.inValue = true;
  }

  /** A chain of references some 8..13 deep: Python's limit is 10 values containing '%'. */
  private chain(section: SectionState): void {
    const len = this.rng.int(8, 13);
    const base = 'chain' + this.rng.int(0, 999) + '_';
    for (let i = 0; i < len; i++) {
      const last = i === len - 1;
      const v = last ? this.rng.pick(['end', '100%%', '']) : `%(${base}${i + 1})s${this.rng.chance(0.3) ? ' +' : ''}`;
      this.push(`${base}${i} = ${v}`, 0, false);
      section.options.add(base + i);
    }
    this.inValue = true;
  }

  // --- the file ----------------------------------------------------------------

  build(): void {
    if (this.has('chaos')) {
      let text = this.rng.chance(0.7) ? '[s]\n' : '';
      const n = this.rng.int(1, 60);
      for (let i = 0; i < n; i++) text += this.rng.pick(CHAOS);
      this.lines.push(text);
      return;
    }
    // Before the first header: only blank lines and comments are allowed.
    const pre = this.rng.int(0, 3);
    for (let i = 0; i < pre; i++) this.lines.push(this.rng.chance(0.5) ? this.comment() : this.blank());
    if (this.has('missingHeader')) {
      this.push(this.rng.pick(['orphan = 1', 'junk before any header', '  indented = 2', 'x:y', '= x']), 0, false);
    }

    const nSections = this.rng.weighted([
      [1, 0],
      [3, 1],
      [4, 2],
      [3, 3],
      [2, 5],
    ] as const);
    const bigAt = this.big ? this.rng.int(0, Math.max(0, nSections - 1)) : -1;
    for (let si = 0; si < nSections; si++) {
      const name = this.sectionName();
      this.header(name, true);
      const section = this.openSection(name);
      const nOptions = this.rng.int(0, 6);
      for (let oi = 0; oi < nOptions; oi++) {
        this.noise();
        this.option(section);
        this.maybeHazardInSection(section);
      }
      if (si === bigAt) this.bigValue(section);
      if (nOptions === 0) this.maybeHazardInSection(section);
      this.noise();
    }
    if (this.has('dupSection') && this.sections.size > 0) {
      const again = this.rng.pick([...this.sections.keys()]);
      this.header(again, true);
      this.openSection(again);
      if (this.rng.chance(0.5)) this.option(this.current as SectionState);
    }
    if (this.has('dupOption') && this.rng.chance(0.4)) {
      // A second [DEFAULT] is legal, but its options join the first one's.
      this.header('DEFAULT', false);
      this.openSection('DEFAULT');
      const again = [...this.defaults.options].filter((n) => n.length > 0);
      this.option(this.defaults, again.length > 0 ? this.spell(this.rng.pick(again)) : undefined);
    }
  }

  private sectionName(): string {
    for (let attempt = 0; attempt < 50; attempt++) {
      const name = this.rng.chance(0.2) ? 'DEFAULT' : this.rng.pick(SECTION_NAMES);
      if (name !== 'DEFAULT' && this.sections.has(name)) continue;
      if (effectiveSectionName(`[${name}]`) !== name) continue;
      return name;
    }
    return 'section' + this.sections.size;
  }

  private maybeHazardInSection(section: SectionState): void {
    if (this.clean || !this.rng.chance(0.35)) return;
    const h = this.rng.pick([...this.hazards]);
    switch (h) {
      case 'badLine':
        this.junkLine();
        break;
      case 'emptyName':
        this.emptyNameLine(section);
        break;
      case 'dupOption': {
        const known = [...section.options].filter((n) => n.length > 0);
        if (known.length > 0) this.option(section, this.spell(this.rng.pick(known)));
        break;
      }
      case 'interpDepth':
        if (this.rng.chance(0.5)) this.cycle(section);
        else this.chain(section);
        break;
      default:
        break; // the others are placed elsewhere
    }
  }

  /** One long value, so that the file spans several of Python's 8192-byte decoding chunks. */
  private bigValue(section: SectionState): void {
    const name = 'big_' + this.rng.int(0, 9999);
    if (section.options.has(name)) return;
    section.options.add(name);
    this.push(`${name} =`, 0, false);
    this.inValue = true;
    const n = this.rng.int(150, 700);
    for (let i = 0; i < n; i++) {
      if (this.rng.chance(0.05)) this.lines.push('');
      else {
        const words = `${this.rng.pick(VALUE_WORDS)} ${this.rng.pick(VALUE_WORDS)} ${i}`;
        this.lines.push(' '.repeat(this.rng.int(1, 4)) + words);
      }
    }
  }

  /** Join the lines with this file's line endings and encode as UTF-8, adding bad bytes if asked. */
  encode(): Uint8Array {
    const style = this.rng.weighted([
      [14, 'lf'],
      [3, 'crlf'],
      [2, 'cr'],
      [1, 'mixed'],
    ] as const);
    const eol = (): string =>
      style === 'lf' ? '\n' : style === 'crlf' ? '\r\n' : style === 'cr' ? '\r' : this.rng.pick(['\n', '\r\n', '\r']);
    if (this.has('chaos')) {
      const bytes = new TextEncoder().encode(this.lines.join(''));
      return this.has('badUtf8') ? this.corrupt(bytes) : bytes;
    }
    let text = '';
    this.lines.forEach((line, i) => {
      text += line;
      if (i < this.lines.length - 1 || this.rng.chance(0.8)) text += eol();
    });
    if (this.has('bom')) text = '\ufeff' + text;
    let bytes: Uint8Array = new TextEncoder().encode(text);
    if (this.has('badUtf8')) bytes = this.corrupt(bytes);
    return bytes;
  }

  private corrupt(bytes: Uint8Array): Uint8Array {
    const bad = this.rng.pick([
      [0xff],
      [0xfe],
      [0x80],
      [0xc0, 0x80],
      [0xc3],
      [0xe2, 0x28, 0xa1],
      [0xe2, 0x82],
      [0xed, 0xa0, 0x80],
      [0xed, 0xa0],
      [0xf0, 0x9f],
      [0xf0, 0x9f, 0x98],
      [0xf0, 0x28, 0x8c, 0x28],
      [0xf4, 0x90, 0x80, 0x80],
      [0xf8, 0x88, 0x80, 0x80, 0x80],
      [0xe0, 0x80, 0x80],
    ]);
    // At the end of the file, or anywhere on a character boundary.
    let at = bytes.length;
    if (!this.rng.chance(0.3) && bytes.length > 0) {
      at = this.rng.int(0, bytes.length - 1);
      while (at < bytes.length && ((bytes[at] as number) & 0xc0) === 0x80) at++;
    }
    const out = new Uint8Array(bytes.length + bad.length);
    out.set(bytes.subarray(0, at), 0);
    out.set(bad, at);
    out.set(bytes.subarray(at), at + bad.length);
    return out;
  }
}

export function generateControlFile(seed: number): GeneratedFile {
  const g = new Generator(seed);
  g.build();
  const bytes = g.encode();
  return { seed, name: `gen-${seed}.ini`, bytes, hazards: [...g.hazards], big: bytes.length > 8192 };
}
