/**
 * Just enough of systemd's unit file syntax (systemd.syntax(7), systemd.service(5))
 * to read what our own units in init/ say: the simulated host's fake reboot runs
 * exactly the command xentest-resume.service runs, under its conditions, and the
 * tests check the units' ordering. Not a general unit parser: no drop-ins, no
 * specifiers other than %%, no environment expansion.
 */
import { readFileSync } from 'node:fs';

export class UnitSyntaxError extends Error {
  override readonly name = 'UnitSyntaxError';

  constructor(
    readonly file: string,
    readonly line: number,
    message: string,
  ) {
    super(`${file}:${line}: ${message}`);
  }
}

export interface UnitFile {
  readonly file: string;
  /** Every assignment of `key` in `section`, in order, with an empty assignment resetting the list (as systemd does for list settings). */
  values(section: string, key: string): string[];
}

export function parseUnit(text: string, file = '<unit>'): UnitFile {
  const entries: { section: string; key: string; value: string }[] = [];
  let section: string | undefined;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let line = lines[i]!;
    // A trailing backslash continues the line; the backslash becomes a space.
    while (line.endsWith('\\') && i + 1 < lines.length) {
      const next = lines[++i]!;
      if (/^\s*[#;]/.test(next)) continue; // comment lines inside a continuation are skipped
      line = line.slice(0, -1) + ' ' + next;
    }
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) continue;
    const header = /^\[([^\]]+)\]$/.exec(trimmed);
    if (header) {
      section = header[1]!;
      continue;
    }
    const eq = trimmed.indexOf('=');
    if (eq <= 0) throw new UnitSyntaxError(file, lineNo, `expected "Key=value" or "[Section]", found "${trimmed}"`);
    if (section === undefined) throw new UnitSyntaxError(file, lineNo, 'assignment before any [Section]');
    entries.push({ section, key: trimmed.slice(0, eq).trim(), value: trimmed.slice(eq + 1).trim() });
  }
  return {
    file,
    values(sectionName: string, key: string): string[] {
      let out: string[] = [];
      for (const e of entries) {
        if (e.section !== sectionName || e.key !== key) continue;
        if (e.value === '') out = [];
        else out.push(e.value);
      }
      return out;
    },
  };
}

export function readUnit(unitFile: string): UnitFile {
  return parseUnit(readFileSync(unitFile, 'utf8'), unitFile);
}

/**
 * The argv [executable, ...arguments] of the unit's one [Service] ExecStart=,
 * unquoted as systemd does, without systemd's prefixes (-, @, :, +, !, !!).
 */
export function readUnitExecStart(unitFile: string): string[] {
  const unit = readUnit(unitFile);
  const commands = unit.values('Service', 'ExecStart');
  if (commands.length !== 1) {
    throw new UnitSyntaxError(unitFile, 0, `expected exactly one ExecStart= in [Service], found ${commands.length}`);
  }
  return execArgv(commands[0]!, unitFile);
}

/** The [Unit] ConditionPathExists= paths, as written (a leading "!" negates, a leading "|" makes it a trigger). */
export function readUnitConditionPaths(unitFile: string): string[] {
  return readUnit(unitFile).values('Unit', 'ConditionPathExists');
}

/** One ExecStart= command line as the argv systemd would execute. */
export function execArgv(commandLine: string, file = '<unit>'): string[] {
  const words = splitWords(commandLine, file);
  const first = words[0];
  if (first === undefined) throw new UnitSyntaxError(file, 0, 'ExecStart= names no command');
  const prefix = /^[-@:+!]*/.exec(first)![0];
  const executable = first.slice(prefix.length);
  if (!executable.startsWith('/') && executable.includes('/')) {
    throw new UnitSyntaxError(file, 0, `ExecStart= executable "${executable}" must be an absolute path or a plain name`);
  }
  // With "@", the second word is argv[0] and is not an argument.
  const args = prefix.includes('@') ? words.slice(2) : words.slice(1);
  return [executable, ...args];
}

/** systemd's word splitting: whitespace-separated, "double" and 'single' quotes, C-style backslash escapes, %% for %. */
function splitWords(s: string, file: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < s.length) {
    while (i < s.length && /\s/.test(s[i]!)) i++;
    if (i >= s.length) break;
    let word = '';
    let quote: string | undefined;
    for (; i < s.length; i++) {
      const c = s[i]!;
      if (quote === undefined && /\s/.test(c)) break;
      if (quote === undefined && (c === '"' || c === "'")) {
        quote = c;
      } else if (c === quote) {
        quote = undefined;
      } else if (c === '\\' && i + 1 < s.length) {
        const n = s[++i]!;
        const escapes: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', "'": "'", ' ': ' ', s: ' ' };
        word += escapes[n] ?? n;
      } else if (c === '%') {
        if (s[i + 1] !== '%') throw new UnitSyntaxError(file, 0, `specifier "%${s[i + 1] ?? ''}" is not supported here`);
        word += '%';
        i++;
      } else {
        word += c;
      }
    }
    if (quote !== undefined) throw new UnitSyntaxError(file, 0, `unbalanced ${quote} in "${s}"`);
    words.push(word);
  }
  return words;
}
