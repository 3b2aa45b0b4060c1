/**
 * `xentest demo [--dir DIR]`: a whole night on the built-in simulated Xen
 * host (scripts/simhost/demo.ts), printed as it goes, ending with what every
 * domain did and where the results are. Exit 0 when the night and every
 * domain's tests are GOOD, 1 otherwise.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseStatusLog } from '../../shared/statuslog/reader.js';
import { DEMO_GUESTS, setUpDemo } from '../../scripts/simhost/demo.js';
import { LAB_HOSTNAME } from '../../scripts/simhost/lab.js';
import { reportPaths } from '../results/report/make.js';
import { formatSummary, summariseNight } from '../results/summary.js';
import { UsageError } from './usage.js';

const USAGE = 'usage: xentest demo [--dir DIR]';
const NIGHT_TIMEOUT_MS = 10 * 60_000;

function parseArgs(argv: string[]): { dir?: string } {
  const out: { dir?: string } = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--dir' && argv[i + 1] !== undefined) out.dir = argv[++i] as string;
    else if (a.startsWith('--dir=')) out.dir = a.slice('--dir='.length);
    else throw new UsageError(`demo: unexpected argument ${JSON.stringify(a)}`, USAGE);
  }
  return out;
}

function workDir(given: string | undefined): string {
  if (given === undefined) return mkdtempSync(join(tmpdir(), 'xentest-demo-'));
  const dir = resolve(given);
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new UsageError(`demo: ${dir} is not empty`, 'give a new or empty directory with --dir, or none for a fresh one under the temporary directory');
  }
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Prints the night's status.log lines as they are written: steps as they end, domains as dom0 sees them. */
class Progress {
  private printed = 0;
  constructor(private readonly started: number) {}

  poll(nightDir: string | undefined): void {
    if (nightDir === undefined) return;
    const file = join(nightDir, 'status.log');
    if (!existsSync(file)) return;
    const lines = parseStatusLog(readFileSync(file, 'utf8'));
    for (const l of lines.slice(this.printed)) {
      const interesting = (l.indent === 0 && l.code.startsWith('END ')) || l.operation?.startsWith('domain.');
      if (!interesting) continue;
      const t = ((Date.now() - this.started) / 1000).toFixed(1).padStart(5);
      process.stdout.write(`[${t} s] ${l.operation}: ${l.code.replace(/^END /, '')}  ${l.message.split('\n')[0]}\n`);
    }
    this.printed = lines.length;
  }
}

export async function demoCommand(argv: string[]): Promise<number> {
  const dir = workDir(parseArgs(argv).dir);
  const started = Date.now();
  const { lab, server } = await setUpDemo(dir);
  const progress = new Progress(started);
  try {
    process.stdout.write(
      `xentest demo: one night on the simulated Xen host, in ${dir}\n` +
        `  serving a Xen-like tree and two test suites (sieve, settime) at http://127.0.0.1:${server.port}/\n` +
        `  dom0 "${LAB_HOSTNAME}" and guests ${DEMO_GUESTS.join(', ')}; shared directory ${lab.sim.sharedDir}\n` +
        `  control file ${lab.control}\n`,
    );
    const build = await lab.build({}, NIGHT_TIMEOUT_MS);
    progress.poll(lab.nightDir());
    if (build.status !== 0 || !/rebooting; it continues at boot/.test(build.stdout)) {
      process.stdout.write(build.stdout);
      process.stderr.write(build.stderr);
      process.stdout.write(`the night ended before the reboot (xentest build exited ${build.status})\n`);
      return 1;
    }
    const boot = lab.sim.waitForBoot(1, NIGHT_TIMEOUT_MS);
    let booted = false;
    void boot.then(() => (booted = true), () => (booted = true));
    while (!booted) {
      progress.poll(lab.nightDir());
      await new Promise((r) => setTimeout(r, 200));
    }
    await boot;
    progress.poll(lab.nightDir());
  } finally {
    await lab.close();
    await server.stop();
  }
  const summary = summariseNight(lab.nightDir() as string);
  process.stdout.write('\n' + formatSummary(summary));
  const page = reportPaths(summary.dir).html;
  if (existsSync(page)) process.stdout.write(`morning report: ${page}\n`);
  process.stdout.write(`done in ${((Date.now() - started) / 1000).toFixed(1)} s; the simulated machine is in ${join(dir, 'machine')}\n`);
  const ok = summary.status === 'GOOD' && summary.domains.every((d) => d.overall === 'GOOD');
  return ok ? 0 : 1;
}
