/**
 * configparser.BasicInterpolation: `%(name)s` from the same section or
 * [DEFAULT], `%%` for a literal percent sign, at most MAX_INTERPOLATION_DEPTH
 * levels of nesting. The order of checks and the messages are Python's.
 */
import {
  interpolationDepth,
  interpolationMissing,
  interpolationSyntax,
  MAX_INTERPOLATION_DEPTH,
  type Location,
} from './errors.js';
import { pyLower, pyRepr } from './pystring.js';

/**
 * Expand `value`, the raw value of `option` in `section`, looking names up in
 * `lookup` (the section's options over the defaults, names lower-cased).
 * `at` is where the option is defined; every error points there.
 */
export function interpolate(
  section: string,
  option: string,
  value: string,
  lookup: (name: string) => string | undefined,
  at: Location,
): string {
  if (!value.includes('%')) return value;
  const accum: string[] = [];
  expand(value, 1);
  return accum.join('');

  function expand(text: string, depth: number): void {
    // Python reports the top-level option's raw value at every depth.
    if (depth > MAX_INTERPOLATION_DEPTH) throw interpolationDepth(at, section, option, value);
    let rest = text;
    while (rest.length > 0) {
      const p = rest.indexOf('%');
      if (p < 0) {
        accum.push(rest);
        return;
      }
      if (p > 0) {
        accum.push(rest.slice(0, p));
        rest = rest.slice(p);
      }
      const c = rest.charAt(1);
      if (c === '%') {
        accum.push('%');
        rest = rest.slice(2);
      } else if (c === '(') {
        // _KEYCRE = %\(([^)]+)\)s, matched at the start of rest.
        const close = rest.indexOf(')', 2);
        if (close <= 2 || rest.charAt(close + 1) !== 's') {
          throw interpolationSyntax(at, `bad interpolation variable reference ${pyRepr(rest)}`);
        }
        const name = pyLower(rest.slice(2, close));
        rest = rest.slice(close + 2);
        const v = lookup(name);
        if (v === undefined) throw interpolationMissing(at, section, option, value, name);
        if (v.includes('%')) expand(v, depth + 1);
        else accum.push(v);
      } else {
        throw interpolationSyntax(at, `'%' must be followed by '%' or '(', found: ${pyRepr(rest)}`);
      }
    }
  }
}
