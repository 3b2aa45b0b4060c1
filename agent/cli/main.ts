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
import { formatConfigError } from './errors.js';
import { EXIT_USAGE, REPORT_USAGE, UsageError } from './usage.js';

type Command = (argv: string[]) => number | Promise<number>;

/**
 * A command whose module is loaded only when it runs: every `xentest` process
 * (the runner in each domain, the agent at boot, each balloon suite) starts
 * without loading what the other commands need (the simulated host, the
 * report renderer, the database drivers).
 */
function lazy<M>(load: () => Promise<M>, pick: (m: M) => Command): Command {
  return async (argv) => pick(await load())(argv);
}

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
    run: lazy(() => import('./night.js'), (m) => m.buildCommand),
    usage: 'xentest build FILE',
    summary: 'start a night (fetch, build, install, arm the boot loader, reboot), or continue the one in progress',
  },
  resume: {
    run: lazy(() => import('./night.js'), (m) => m.resumeCommand),
    usage: 'xentest resume',
    summary: 'continue the night in progress (run at boot by xentest-resume.service)',
  },
  run: {
    run: lazy(() => import('./run.js'), (m) => m.runCommandLine),
    usage: 'xentest run [--hostname NAME] [--shared-dir DIR] [--wait SECONDS]',
    summary: "run this domain's tests from its directory in the shared directory (started at boot in every domain)",
  },
  schedule: {
    run: lazy(() => import('./schedule.js'), (m) => m.scheduleCommand),
    usage: 'xentest schedule FILE [--cron EXPR] [--timezone TZ]',
    summary: "run nights on the control file's schedule (or --cron), one at a time, until stopped",
  },
  demo: {
    run: lazy(() => import('./demo.js'), (m) => m.demoCommand),
    usage: 'xentest demo [--dir DIR]',
    summary: 'run a whole night on the built-in simulated Xen host (dom0 and two guests), with nothing to set up',
  },
  balloon: {
    run: lazy(() => import('../balloon/cli.js'), (m) => m.balloonCommand),
    usage:
      'xentest balloon [--interface auto|proc|sysfs|xl] [--domain NAME] [--floor SIZE] [--rapid N] [--rapid-seconds S] [--seed N] [--settle S] [--only SCENARIO]... [--restore] [--list]',
    summary: "the balloon-driver suite: the paper's scenarios on this domain's sysfs or /proc/xen/balloon, and xl mem-set from dom0",
  },
  check: {
    run: lazy(() => import('./check.js'), (m) => m.checkCommand),
    usage: 'xentest check FILE',
    summary: 'validate a control file; print every problem with file:line and what to do',
  },
  config: {
    run: lazy(() => import('./config.js'), (m) => m.configCommand),
    usage: 'xentest config [--json] FILE',
    summary: "print the control file's values exactly as Python's configparser reads them",
  },
  export: {
    run: lazy(() => import('./export.js'), (m) => m.exportCommand),
    usage: 'xentest export --junit|--kcidb [--origin NAME] [--out FILE] NIGHT_DIR',
    summary: "write a night's results as JUnit XML (Jenkins, GitLab) or KCIDB JSON (KernelCI)",
  },
  db: {
    run: lazy(() => import('./db.js'), (m) => m.dbCommand),
    usage: 'xentest db ingest|rebuild [--db URL|FILE] ...',
    summary: 'store nights in the results database: "ingest NIGHT_DIR...", or "rebuild DIR" from every night\'s files',
  },
  compare: {
    run: lazy(() => import('./compare.js'), (m) => m.compareCommand),
    usage: 'xentest compare [NIGHT] [--base NIGHT] [--machine M] [--json]',
    summary: 'each test of a night against the last night it passed on the same machine and domain: regressions first',
  },
  report: {
    run: lazy(() => import('./morning.js'), (m) => m.reportCommand),
    usage: REPORT_USAGE.replace(/^usage: /, ''),
    summary: "the morning report of a night: an HTML page (verdict, regressions with their logs, every domain's tests, charts of the last nights) and a text summary for an email",
  },
  parse: {
    run: lazy(() => import('./parse.js'), (m) => m.parseCommand),
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
      const { formatProblem } = await import('./check.js');
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
