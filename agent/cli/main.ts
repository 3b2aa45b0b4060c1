/**
 * The `xentest` command line. Each command lives in its own module; this one
 * only dispatches and turns user mistakes into one clear message and an exit
 * status, never a stack trace. Anything else is a bug and crashes loudly.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../../shared/controlfile/errors.js';
import { checkCommand } from './check.js';
import { configCommand } from './config.js';
import { formatConfigError } from './report.js';
import { EXIT_USAGE, UsageError } from './usage.js';

type Command = (argv: string[]) => number | Promise<number>;

interface CommandInfo {
  readonly run: Command;
  readonly usage: string;
  readonly summary: string;
}

const COMMANDS: Record<string, CommandInfo> = {
  check: {
    run: checkCommand,
    usage: 'xentest check FILE',
    summary: 'validate a control file; print every problem with file:line and what to do',
  },
  config: {
    run: configCommand,
    usage: 'xentest config [--json] FILE',
    summary: "print the control file's values exactly as Python's configparser reads them",
  },
  help: {
    run: () => {
      process.stdout.write(helpText());
      return 0;
    },
    usage: 'xentest help',
    summary: 'this list',
  },
  version: {
    run: () => {
      process.stdout.write(`xentest ${packageVersion()}\n`);
      return 0;
    },
    usage: 'xentest version',
    summary: 'print the version',
  },
};

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function helpText(): string {
  const width = Math.max(...Object.values(COMMANDS).map((c) => c.usage.length));
  const rows = Object.values(COMMANDS).map((c) => `  ${c.usage.padEnd(width)}  ${c.summary}`);
  return `usage: xentest COMMAND [OPTIONS]\n\n${rows.join('\n')}\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const aliases: Record<string, string> = { '--help': 'help', '-h': 'help', '--version': 'version' };
  const command = COMMANDS[aliases[name ?? 'help'] ?? name ?? 'help'];
  try {
    if (!command) throw new UsageError(`unknown command "${name}"`);
    return await command.run(rest);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(formatConfigError(e) + '\n');
      return 2;
    }
    if (e instanceof UsageError || isParseArgsError(e)) {
      const hint = e instanceof UsageError ? e.hint : 'run "xentest help" for the commands and their options';
      process.stderr.write(`xentest: ${(e as Error).message}\n  hint: ${hint}\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
}

/** node:util parseArgs rejects unknown or malformed options with these codes. */
function isParseArgsError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}
