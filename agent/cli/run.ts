/**
 * `xentest run [--hostname NAME] [--shared-dir DIR] [--wait SECONDS]`: the
 * runner in a domain (init/xentest-runner.service starts it at boot in every
 * domain, dom0 included). Exit 0: every test was GOOD, or there was nothing
 * to do (no control file copy within the wait, another runner has this
 * domain); 1: a test did not pass, or this domain's work could not be run
 * (no section for this host; the reason is in its results).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runnerSharedDir } from '../../shared/domaindir.js';
import { DEFAULT_WAIT_SECONDS, runDomain, RunnerUsageError } from '../runner/domain-runner.js';
import { SharedDirUnavailable } from '../runner/shared-area.js';
import { UsageError } from './usage.js';

export const EXIT_TESTS_FAILED = 1;
const USAGE = 'usage: xentest run [--hostname NAME] [--shared-dir DIR] [--wait SECONDS]';

/** The most memory this process has used (VmHWM), for the last line: a test's output must never end up in it. */
function peakRss(): string | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? `${Math.round(Number(m[1]) / 1024)} MiB` : undefined;
  } catch {
    return undefined;
  }
}

export async function runCommandLine(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      hostname: { type: 'string' },
      'shared-dir': { type: 'string' },
      wait: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0) throw new UsageError(`run takes no arguments (got ${positionals.join(' ')})`, USAGE);
  const wait = values.wait === undefined ? DEFAULT_WAIT_SECONDS : Number(values.wait);
  if (!Number.isFinite(wait) || wait < 0) throw new UsageError(`--wait ${values.wait} is not a number of seconds`, USAGE);
  const say = (line: string): void => {
    process.stdout.write(line + '\n');
  };
  let code: number;
  try {
    const outcome = await runDomain({
      ...(values.hostname !== undefined ? { hostname: values.hostname } : {}),
      sharedDir: runnerSharedDir(values['shared-dir']),
      waitSeconds: wait,
      say,
    });
    switch (outcome.kind) {
      case 'no-work':
      case 'busy':
        say(outcome.message);
        code = 0;
        break;
      case 'refused':
      case 'no-section':
        process.stderr.write(`xentest run: ${outcome.message}\n`);
        code = 1;
        break;
      case 'finished': {
        for (const t of outcome.tests) say(`  ${t.status.padEnd(5)} ${t.name}${t.reason ? `: ${t.reason}` : ''}`);
        const good = outcome.tests.filter((t) => t.status === 'GOOD').length;
        say(`${outcome.hostname}: ${good} of ${outcome.tests.length} tests GOOD`);
        code = outcome.allGood ? 0 : EXIT_TESTS_FAILED;
        break;
      }
    }
  } catch (e) {
    if (e instanceof RunnerUsageError) throw new UsageError(e.message, 'give this domain\'s name with --hostname NAME (or XENTEST_HOSTNAME)');
    if (e instanceof SharedDirUnavailable) {
      process.stderr.write(`xentest run: ${e.message}\n  hint: check the shared directory mount; run xentest run again and it continues where it stopped\n`);
      code = EXIT_TESTS_FAILED;
    } else throw e;
  }
  const peak = peakRss();
  if (peak) say(`runner peak memory (VmHWM): ${peak}`);
  return code;
}
