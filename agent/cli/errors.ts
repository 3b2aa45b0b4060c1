/** How user-caused errors look on a terminal: where, what, and what to do. No stack traces. */
import type { ConfigError } from '../../shared/controlfile/errors.js';

export function where(file: string, line: number): string {
  return line > 0 ? `${file}:${line}` : file;
}

export function formatConfigError(e: ConfigError): string {
  return `${where(e.file, e.line)}: ${e.type}: ${e.message}\n  hint: ${e.hint}`;
}
