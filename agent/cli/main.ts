/**
 * The `xentest` command line. Each command lives in its own module; this one
 * only dispatches and turns user mistakes into one clear message and an exit
 * status, never a stack trace. Anything else is a bug and crashes loudly.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../../shared/controlfile/errors.js';
import { ControlFileInvalid } from '../../shared/controlfile/model.js';
import { LockBusy } from '../lock.js';
import { ScheduleError } from '../schedule.js';
import { balloonCommand, BALLOON_USAGE } from '../balloon/cli.js';
import { checkCommand, formatProblem } from './check.js';
import { compareCommand } from './compare.js';
import { configCommand } from './config.js';
import { dbCommand } from './db.js';
import { demoCommand } from './demo.js';
import { exportCommand } from './export.js';
import { buildCommand, resumeCommand } from './night.js';
import { reportCommand, REPORT_USAGE } from './morning.js';
import { parseCommand } from './parse.js';
import { runCommandLine } from './run.js';
import { scheduleCommand } from './schedule.js';
import { formatConfigError } from './errors.js';
import { EXIT_USAGE, UsageError } from './usage.js';

type Command = (argv: string[]) => number | Promise<number>;

/** Exit statuses every command shares (a command's own are documented with it). */
export const EXIT_CONTROL_INVALID = 2;
export const EXIT_LOCKED = 3;

interface CommandInfo {
  readonly run: Command;
  readonly usage: string;
  readonly summary: string;
}

const COMMANDS: Record<string, CommandInfo> = {
  build: {
    run: buildCommand,
    usage: 'xentest build FILE',
    summary: 'start a night (fetch, build, install, arm the boot loader, reboot), or continue the one in progress',
  },
  resume: {
    run: resumeCommand,
    usage: 'xentest resume',
    summary: 'continue the night in progress (run at boot by xentest-resume.service)',
  },
  run: {
    run: runCommandLine,
    usage: 'xentest run [--hostname NAME] [--shared-dir DIR] [--wait SECONDS]',
    summary: "run this domain's tests from its directory in the shared directory (started at boot in every domain)",
  },
  schedule: {
    run: scheduleCommand,
    usage: 'xentest schedule FILE [--cron EXPR] [--timezone TZ]',
    summary: "run nights on the control file's schedule (or --cron), one at a time, until stopped",
  },
  demo: {
    run: demoCommand,
    usage: 'xentest demo [--dir DIR]',
    summary: 'run a whole night on the built-in simulated Xen host (dom0 and two guests), with nothing to set up',
  },
  balloon: {
    run: balloonCommand,
    usage: BALLOON_USAGE,
    summary: "the balloon-driver suite: the paper's scenarios on this domain's sysfs or /proc/xen/balloon, and xl mem-set from dom0",
  },
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
  export: {
    run: exportCommand,
    usage: 'xentest export --junit|--kcidb [--origin NAME] [--out FILE] NIGHT_DIR',
    summary: "write a night's results as JUnit XML (Jenkins, GitLab) or KCIDB JSON (KernelCI)",
  },
  db: {
    run: dbCommand,
    usage: 'xentest db ingest|rebuild [--db URL|FILE] ...',
    summary: 'store nights in the results database: "ingest NIGHT_DIR...", or "rebuild DIR" from every night\'s files',
  },
  compare: {
    run: compareCommand,
    usage: 'xentest compare [NIGHT] [--base NIGHT] [--machine M] [--json]',
    summary: 'each test of a night against the last night it passed on the same machine and domain: regressions first',
  },
  report: {
    run: reportCommand,
    usage: REPORT_USAGE.replace(/^usage: /, ''),
    summary: "the morning report of a night: an HTML page (verdict, regressions with their logs, every domain's tests, charts of the last nights) and a text summary for an email",
  },
  parse: {
    run: parseCommand,
    usage: 'xentest parse PATH [--json] [--detail]',
    summary: "what autotest's TKO parser makes of a status.log or a results directory: each test's name, status and reason",
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
      return EXIT_CONTROL_INVALID;
    }
    if (e instanceof ControlFileInvalid) {
      for (const p of e.problems) process.stderr.write(formatProblem(p) + '\n');
      process.stderr.write(`${e.file}: cannot be used (${e.problems.length} error${e.problems.length === 1 ? '' : 's'}); nothing was done\n`);
      return EXIT_CONTROL_INVALID;
    }
    if (e instanceof LockBusy) {
      process.stderr.write(`xentest: ${e.message}\n`);
      return EXIT_LOCKED;
    }
    if (e instanceof ScheduleError) {
      process.stderr.write(`xentest: ${e.message}\n  hint: ${e.hint}\n`);
      return EXIT_USAGE;
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
