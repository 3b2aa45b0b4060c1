/**
 * Python 3 string semantics that configparser's behaviour depends on.
 *
 * JavaScript's notion of whitespace differs from Python's (`\s` in JS matches
 * U+FEFF but not U+001C..U+001F or U+0085), and JSON.stringify is not repr().
 * Control files must read to exactly what Python reads, so these follow
 * CPython's `str.isspace`, `str.strip` and `repr(str)`.
 */

/** Code points for which CPython's `str.isspace()` is true (Unicode 14). */
const PY_WHITESPACE = new Set<number>([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680,
  0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
  0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

export function isPySpaceCode(code: number): boolean {
  // Fast path: printable ASCII other than space is never whitespace.
  if (code > 0x20 && code < 0x7f) return false;
  return PY_WHITESPACE.has(code);
}

/** Index of the first character that is not Python whitespace, or -1. */
export function firstNonSpace(s: string): number {
  for (let i = 0; i < s.length; i++) {
    if (!isPySpaceCode(s.charCodeAt(i))) return i;
  }
  return -1;
}

/** Python's `str.strip()` with no arguments. */
export function pyStrip(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isPySpaceCode(s.charCodeAt(start))) start++;
  while (end > start && isPySpaceCode(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

/** Python's `str.rstrip()` with no arguments. */
export function pyRstrip(s: string): string {
  let end = s.length;
  while (end > 0 && isPySpaceCode(s.charCodeAt(end - 1))) end--;
  return end === s.length ? s : s.slice(0, end);
}

/**
 * Python's `str.lower()`; JS full-case lowering agrees with it, final sigma included.
 *
 * Both follow their own Unicode version: Python 3.11 has Unicode 14, Node 20's
 * ICU a later one (17 in Node 20.20). Letters that gained a case mapping
 * since (e.g. U+A7CB, Garay) are lowered here and not by Python. The same
 * goes for pyRepr below: characters assigned after Unicode 14 (e.g. U+1F6DC)
 * are unassigned to Python, so its repr() escapes them and ours does not.
 * The differential tests keep such characters out; nobody writes them in a
 * control file.
 */
export function pyLower(s: string): string {
  return s.toLowerCase();
}

// Python's repr() escapes the characters str.isprintable() rejects: categories
// Cc, Cf, Cs, Co, Cn, Zl, Zp and Zs other than the ASCII space.
const NON_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

function hex(code: number, width: number): string {
  return code.toString(16).padStart(width, '0');
}

/** Python's `repr(str)`, as used in configparser's error messages. */
export function pyRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const code = ch.codePointAt(0) as number;
    if (ch === quote || ch === '\\') out += '\\' + ch;
    else if (ch === '\t') out += '\\t';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (code < 0x20 || code === 0x7f) out += '\\x' + hex(code, 2);
    else if (code < 0x7f) out += ch;
    else if (ch !== ' ' && NON_PRINTABLE.test(ch)) {
      if (code < 0x100) out += '\\x' + hex(code, 2);
      else if (code < 0x10000) out += '\\u' + hex(code, 4);
      else out += '\\U' + hex(code, 8);
    } else out += ch;
  }
  return out + quote;
}

/** Python's `'%2d' % n` / `'{0:2d}'.format(n)`. */
export function pyPad2(n: number): string {
  return String(n).padStart(2, ' ');
}
