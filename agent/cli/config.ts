/**
 * `xentest config [--json] FILE`: the control file as Python's configparser
 * reads it. Exit 0 with the values, or 2 with Python's exception.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../../shared/controlfile/errors.js';
import { errorJson, pythonView, pythonViewJson, pythonViewText } from '../../shared/controlfile/pyview.js';
import { readControlFile } from '../../shared/controlfile/reader.js';
import { formatConfigError } from './errors.js';
import { UsageError } from './usage.js';

export const EXIT_CONFIG_ERROR = 2;

export function configCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean', default: false } },
    allowPositionals: true,
  });
  const file = positionals[0];
  if (positionals.length !== 1 || file === undefined) {
    throw new UsageError('config takes exactly one control file', 'usage: xentest config [--json] FILE');
  }
  try {
    const view = pythonView(readControlFile(file));
    process.stdout.write((values.json ? pythonViewJson(view) : pythonViewText(view)) + '\n');
    return 0;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    if (values.json) process.stdout.write(errorJson(e) + '\n');
    else process.stderr.write(formatConfigError(e) + '\n');
    return EXIT_CONFIG_ERROR;
  }
}
