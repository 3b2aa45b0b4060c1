/**
 * The errors Python's configparser raises, with its exact messages, plus the
 * file and line every one of them happened at (Python only knows the line for
 * some of them; we always know it).
 */
import { pyPad2, pyRepr } from './pystring.js';

/** Interpolation is capped exactly where configparser caps it. */
export const MAX_INTERPOLATION_DEPTH = 10;

export type ConfigErrorType =
  | 'MissingSectionHeaderError'
  | 'ParsingError'
  | 'DuplicateSectionError'
  | 'DuplicateOptionError'
  | 'InterpolationMissingOptionError'
  | 'InterpolationSyntaxError'
  | 'InterpolationDepthError'
  | 'UnicodeDecodeError'
  | 'FileNotFoundError';

/** Where something is in a control file. Lines count from 1, as Python's do. */
export interface Location {
  file: string;
  line: number;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';

  constructor(
    /** The Python exception class Python would raise for the same input. */
    readonly type: ConfigErrorType,
    /** Python's own message for it, character for character. */
    message: string,
    readonly file: string,
    readonly line: number,
    /** What the user should do about it. */
    readonly hint: string,
  ) {
    super(message);
  }

  toJSON(): { type: string; message: string; file: string; line: number } {
    return { type: this.type, message: this.message, file: this.file, line: this.line };
  }
}

export function missingSectionHeader(file: string, line: number, text: string): ConfigError {
  return new ConfigError(
    'MissingSectionHeaderError',
    `File contains no section headers.\nfile: ${pyRepr(file)}, line: ${line}\n${pyRepr(text)}`,
    file,
    line,
    text.startsWith('\ufeff')
      ? 'the file starts with a UTF-8 byte-order mark, which Python does not accept: save it without one'
      : 'start the file with a section header such as [Preferences] before any option',
  );
}

/** One line Python could not parse; they are reported together at the end of the file. */
export interface BadLine {
  line: number;
  text: string;
}

export function parsingError(file: string, bad: readonly BadLine[]): ConfigError {
  let message = `Source contains parsing errors: ${pyRepr(file)}`;
  for (const b of bad) message += `\n\t[line ${pyPad2(b.line)}]: ${pyRepr(b.text)}`;
  const first = bad[0];
  if (!first) throw new Error('parsingError needs at least one bad line');
  return new ConfigError(
    'ParsingError',
    message,
    file,
    first.line,
    'every line must be a [section] header, a "key = value" (or "key: value") option, ' +
      'a comment starting with # or ;, or an indented continuation of the value above',
  );
}

export function duplicateSection(file: string, line: number, section: string): ConfigError {
  return new ConfigError(
    'DuplicateSectionError',
    `While reading from ${pyRepr(file)} [line ${pyPad2(line)}]: section ${pyRepr(section)} already exists`,
    file,
    line,
    `merge the two [${section}] sections into one`,
  );
}

export function duplicateOption(file: string, line: number, section: string, option: string): ConfigError {
  return new ConfigError(
    'DuplicateOptionError',
    `While reading from ${pyRepr(file)} [line ${pyPad2(line)}]: option ${pyRepr(option)} in section ` +
      `${pyRepr(section)} already exists`,
    file,
    line,
    `keep one "${option}" in [${section}] (option names are case-insensitive)`,
  );
}

export function interpolationMissing(
  at: Location,
  section: string,
  option: string,
  rawval: string,
  reference: string,
): ConfigError {
  return new ConfigError(
    'InterpolationMissingOptionError',
    `Bad value substitution: option ${pyRepr(option)} in section ${pyRepr(section)} contains an ` +
      `interpolation key ${pyRepr(reference)} which is not a valid option name. Raw value: ${pyRepr(rawval)}`,
    at.file,
    at.line,
    `define "${reference}" in [${section}] or in [DEFAULT], or write %% for a literal %`,
  );
}

export function interpolationSyntax(at: Location, detail: string): ConfigError {
  return new ConfigError(
    'InterpolationSyntaxError',
    detail,
    at.file,
    at.line,
    'write %(name)s to use another option, or %% for a literal %',
  );
}

export function interpolationDepth(at: Location, section: string, option: string, rawval: string): ConfigError {
  return new ConfigError(
    'InterpolationDepthError',
    `Recursion limit exceeded in value substitution: option ${pyRepr(option)} in section ${pyRepr(section)} ` +
      `contains an interpolation key which cannot be substituted in ${MAX_INTERPOLATION_DEPTH} steps. ` +
      `Raw value: ${pyRepr(rawval)}`,
    at.file,
    at.line,
    'look for options that refer to each other in a loop',
  );
}
