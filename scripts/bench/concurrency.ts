/**
 * Whether the domains of a night run their tests at the same time.
 *
 *   npm run build && npm run bench:concurrency [-- --runs N]
 *
 * A whole night on the simulated Xen host (scripts/simhost/lab.ts) with dom0
 * and two guests, vm1 and vm2, each running one test, `sleep 5`. Measured
 * for each night:
 *
 *   domain phase  wall time from domains.start's start to domains.wait's end,
 *                 from the night's journal.json (ISO times to the ms; the
 *                 status.log's timestamp= field is whole seconds)
 *   tests         each domain's collected results (nights/<id>/domains/<name>/),
 *                 each test's duration: its END line's duration_ms in that
 *                 domain's status.log, and run_seconds (run_command alone)
 *                 from the test's keyval
 *
 * The sum of the test durations is what the phase would take if the domains
 * ran one after another; the ratio wall / sum is about 1/3 when all three run
 * at once. Medians over N runs (default 3). The bar: a median wall time under
 * 10 s (serially it would be over 15 s); exit 1 at or over it.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { NightData } from '../../agent/pipeline/journal.js';
import { readKeyval } from '../../shared/statuslog/keyval.js';
import { NightLab, TarballServer } from '../simhost/lab.js';

const WALL_BAR_S = 10;
const TEST = 'sleep5';
const TEST_SECONDS = 5;
const GUESTS = ['vm1', 'vm2'];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

interface TestTime {
  domain: string;
  status: string;
  /** The test's step, START to END (fetch, place, run_command, keyval). */
  stepMs: number;
  /** run_command alone. */
  runSeconds: number;
}

interface Sample {
  wallMs: number;
  tests: TestTime[];
  sumMs: number;
}

/** The test's directory source: the runner copies it to tempdir/sleep5 and runs the command there. */
function writeSuite(root: string): string {
  const suite = join(root, 'suites', TEST);
  mkdirSync(suite, { recursive: true });
  writeFileSync(join(suite, 'README'), `${TEST}: sleeps ${TEST_SECONDS} s in every domain\n`);
  return suite;
}

/** The END line of `name` in a status.log, as its tab-separated fields (without the leading tabs). */
function endLine(statusLog: string, name: string): string[] | undefined {
  for (const line of readFileSync(statusLog, 'utf8').split('\n')) {
    const f = line.replace(/^\t+/, '').split('\t');
    if (f[0]?.startsWith('END ') && f[2] === name) return f;
  }
  return undefined;
}

function field(fields: string[], key: string): string | undefined {
  return fields.find((f) => f.startsWith(`${key}=`))?.slice(key.length + 1);
}

async function oneNight(root: string, server: TarballServer, suite: string, i: number): Promise<Sample> {
  const lab = new NightLab(join(root, `lab-${i}`), server, {
    guests: GUESTS,
    tests: { [TEST]: { source_url: suite, test_dir: TEST, run_command: `sleep ${TEST_SECONDS}`, timeout: '60' } },
    domainTimeoutSeconds: 60,
  });
  try {
    const { boot, dir } = await lab.night();
    if (boot.resumeExitStatus !== 0) throw new Error(`the resume at boot exited with ${boot.resumeExitStatus}: see ${dir}`);
    const journal = JSON.parse(readFileSync(join(dir, 'journal.json'), 'utf8')) as NightData;
    const step = (name: string) => journal.steps.find((s) => s.name === name);
    const start = step('domains.start')?.startedAt;
    const end = step('domains.wait')?.finishedAt;
    if (!start || !end) throw new Error(`${dir}/journal.json: domains.start or domains.wait did not run`);
    const tests = lab.domains.map((domain): TestTime => {
      const results = join(dir, 'domains', domain);
      const end = endLine(join(results, 'status.log'), TEST);
      if (!end) throw new Error(`${results}/status.log has no END line for ${TEST}`);
      const keyval = readKeyval(join(results, TEST, 'keyval'));
      return {
        domain,
        status: (end[0] as string).slice('END '.length),
        stepMs: Number(field(end, 'duration_ms')),
        runSeconds: Number(keyval.get('run_seconds')),
      };
    });
    const bad = tests.filter((t) => t.status !== 'GOOD');
    if (bad.length) throw new Error(`not GOOD: ${bad.map((t) => `${t.domain} ${t.status}`).join(', ')} (see ${dir})`);
    return { wallMs: Date.parse(end) - Date.parse(start), tests, sumMs: tests.reduce((sum, t) => sum + t.stepMs, 0) };
  } finally {
    await lab.close();
  }
}

function positiveInt(name: string, value: string | undefined, dflt: number): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`bench:concurrency: --${name} must be an integer >= 1, not "${value}"\n`);
    process.exit(64);
  }
  return n;
}

const s = (ms: number): string => (ms / 1000).toFixed(2);

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { runs: { type: 'string' } } });
  const runs = positiveInt('runs', values.runs, 3);
  const root = mkdtempSync(join(tmpdir(), 'xentest-bench-concurrency-'));
  mkdirSync(join(root, 'www'));
  const server = new TarballServer(join(root, 'www'));
  await server.start();
  const samples: Sample[] = [];
  try {
    const suite = writeSuite(root);
    const domains = ['dom0', ...GUESTS].join(' + ');
    console.log(`simulated nights, ${domains}, each running \`sleep ${TEST_SECONDS}\`: ${runs} runs on node ${process.version}\n`);
    const head = `${'run'.padEnd(4)} ${'domain phase s'.padStart(14)} ${'sum of tests s'.padStart(14)} ${'wall/sum'.padStart(8)}   each test: step s (run_command s)`;
    console.log(head);
    console.log('-'.repeat(head.length + 24));
    for (let i = 0; i < runs; i++) {
      const x = await oneNight(root, server, suite, i);
      samples.push(x);
      const each = x.tests.map((t) => `${t.domain} ${s(t.stepMs)} (${t.runSeconds.toFixed(2)})`).join(', ');
      console.log(`${String(i + 1).padEnd(4)} ${s(x.wallMs).padStart(14)} ${s(x.sumMs).padStart(14)} ${(x.wallMs / x.sumMs).toFixed(2).padStart(8)}   ${each}`);
    }
  } finally {
    await server.stop();
    rmSync(root, { recursive: true, force: true });
  }
  const wall = median(samples.map((x) => x.wallMs));
  const sum = median(samples.map((x) => x.sumMs));
  console.log('-'.repeat(40));
  console.log(`${'med'.padEnd(4)} ${s(wall).padStart(14)} ${s(sum).padStart(14)} ${median(samples.map((x) => x.wallMs / x.sumMs)).toFixed(2).padStart(8)}`);
  console.log('');
  const slow = wall >= WALL_BAR_S * 1000;
  console.log(`3 domains x ${TEST_SECONDS} s test: median wall ${s(wall)} s (serial would be ${s(sum)} s) ${slow ? 'SLOW' : 'OK'}`);
  return slow ? 1 : 0;
}

process.exitCode = await main();
