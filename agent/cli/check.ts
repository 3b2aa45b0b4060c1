/**
 * `xentest check FILE`: every problem in a control file at once, each with
 * file:line and what to do. Exit 0 with a short summary when the file is
 * usable (warnings allowed), 1 when it is not.
 */
import { ConfigError } from '../../shared/controlfile/errors.js';
import { interpretControlFile, type ControlFile } from '../../shared/controlfile/model.js';
import type { Problem } from '../../shared/controlfile/problems.js';
import { readControlFileLenient } from '../../shared/controlfile/reader.js';
import { describeSource } from '../../shared/controlfile/sources.js';
import { where } from './errors.js';
import { UsageError } from './usage.js';

export const EXIT_INVALID = 1;

export function formatProblem(p: Problem): string {
  return `${where(p.file, p.line)}: ${p.severity}: ${p.message}\n  hint: ${p.hint}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function summarise(c: ControlFile): string {
  const p = c.preferences;
  const lines = [
    `${c.file}: OK`,
    `  xen tree:   ${p.xenTree.name} (${describeSource(p.xenTree.source)})`,
    ...(p.linuxTree ? [`  linux tree: ${p.linuxTree.name} (${describeSource(p.linuxTree.source)})`] : []),
    `  shared dir: ${p.sharedDir.value}`,
    `  ${plural(c.domains.length, 'domain')}, ${plural(c.tests.size, 'test section')}:`,
  ];
  for (const d of c.domains) {
    const started = d.config ? `started from ${d.config.value}` : 'already running (dom0 or started elsewhere)';
    const tests = d.tests.map((t) => t.test.name).join(', ') || 'no tests';
    lines.push(`    ${d.name.value} [${d.section}], ${started}: ${plural(d.tests.length, 'test')} (${tests})`);
  }
  if (c.profilers.length > 0) {
    lines.push(`  ${plural(c.profilers.length, 'profiler')} in dom0 while the domains test:`);
    for (const prof of c.profilers) lines.push(`    ${prof.name}: ${prof.command}`);
  }
  return lines.join('\n');
}

export function checkCommand(argv: string[]): number {
  const [file, ...extra] = argv;
  if (file === undefined || extra.length > 0 || file.startsWith('-')) {
    throw new UsageError('check takes exactly one control file', 'usage: xentest check FILE');
  }
  let result;
  try {
    result = readControlFileLenient(file);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stdout.write(`${where(e.file, e.line)}: error: ${e.message}\n  hint: ${e.hint}\n`);
    return EXIT_INVALID;
  }
  const { control, problems } = interpretControlFile(result);
  for (const p of problems.sorted()) process.stdout.write(formatProblem(p) + '\n');
  const nErrors = problems.errors.length;
  const nWarnings = problems.warnings.length;
  if (!control) {
    process.stdout.write(`${file}: ${plural(nErrors, 'error')}, ${plural(nWarnings, 'warning')}\n`);
    return EXIT_INVALID;
  }
  process.stdout.write(summarise(control) + '\n');
  if (nWarnings > 0) process.stdout.write(`  ${plural(nWarnings, 'warning')}\n`);
  return 0;
}
