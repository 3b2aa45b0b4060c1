/** What `xentest check` reports: one problem, where it is, and what to do about it. */
import { closest, distance } from 'fastest-levenshtein';
import type { ConfigError, Location } from './errors.js';

export type Severity = 'error' | 'warning';

export interface Problem extends Location {
  readonly severity: Severity;
  readonly message: string;
  readonly hint: string;
}

export class Problems {
  readonly list: Problem[] = [];

  error(at: Location, message: string, hint: string): void {
    this.list.push({ severity: 'error', file: at.file, line: at.line, message, hint });
  }

  warning(at: Location, message: string, hint: string): void {
    this.list.push({ severity: 'warning', file: at.file, line: at.line, message, hint });
  }

  fromConfigError(e: ConfigError): void {
    this.error(e, `${e.type}: ${firstLine(e.message)}`, e.hint);
  }

  get errors(): Problem[] {
    return this.list.filter((p) => p.severity === 'error');
  }

  get warnings(): Problem[] {
    return this.list.filter((p) => p.severity === 'warning');
  }

  /** In file order (problems without a line first), errors before warnings on the same line. */
  sorted(): Problem[] {
    return [...this.list].sort(
      (a, b) => a.line - b.line || (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1),
    );
  }
}

/** Python's ParsingError lists every bad line; each is its own problem here, so the first line is enough. */
function firstLine(message: string): string {
  const nl = message.indexOf('\n');
  return nl < 0 ? message : message.slice(0, nl);
}

/** A "did you mean" for a misspelt name, or '' when nothing is close. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const list = [...candidates];
  if (list.length === 0) return '';
  const exactIgnoringCase = list.find((c) => c.toLowerCase() === word.toLowerCase());
  if (exactIgnoringCase !== undefined) return `did you mean "${exactIgnoringCase}"? (section names are case-sensitive)`;
  const best = closest(word, list);
  const limit = Math.max(1, Math.floor(word.length / 3));
  return distance(word, best) <= limit ? `did you mean "${best}"?` : '';
}
