/**
 * The runner's memory while a test prints 1 GiB.
 *
 *   npm run build && npm run bench:runner-memory [-- --runs N]
 *
 * A domain's runner (`xentest run --hostname H --shared-dir D --wait 0`) is
 * started directly, against a temporary shared directory laid out as dom0's
 * dispatch step leaves it (the night's id and a copy of the control file),
 * with one test whose run_command prints 1 GiB. That output must stream to
 * the test's run.log, never into the runner's memory.
 *
 * The runner's peak RSS is measured from outside: /proc/PID/status VmHWM of
 * the runner (the node process spawned here) is read every 50 ms and the last
 * value read before it exits is kept (VmHWM only grows; a zombie has none).
 * The figure the runner reports on its last line is recorded beside it. Also
 * the wall time, spawn to exit, and the throughput of the test's output
 * (run.log's size over the run_command's time, from the test's keyval).
 * Medians over N runs (default 3); each run's 1 GiB log is deleted before the
 * next. The bar is 100 MiB for the highest peak: exit 1 at or over it.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readKeyval } from '../../shared/statuslog/keyval.js';

// dist/scripts/bench/runner-memory.js -> the package root.
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CLI = join(ROOT, 'bin', 'xentest.js');

const PEAK_BAR_MIB = 100;
const OUTPUT_BYTES = 1024 * 1024 * 1024;
const SAMPLE_MS = 50;
const HOST = 'bench';
const TEST = 'Chatty';
const MiB = 1024 * 1024;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** VmHWM of a live process, in kB; undefined once it is gone or a zombie (which has no memory to report). */
function vmHwmKb(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What dom0's dispatch step leaves for one domain, and the domain's own
 * filesystem: dom0 (control_d), so the test is expected to pass.
 */
function prepare(root: string): { shared: string; domainRoot: string; log: string; keyval: string } {
  const shared = join(root, 'shared');
  const tempdir = join(root, 'tmp', HOST);
  const suite = join(root, 'suite');
  const domainRoot = join(root, 'domroot');
  for (const d of [shared, tempdir, suite, join(domainRoot, 'proc/xen')]) mkdirSync(d, { recursive: true });
  writeFileSync(join(domainRoot, 'proc/xen/capabilities'), 'control_d\n');
  // A directory source: nothing to fetch over the network, so the run is the test's output alone.
  writeFileSync(join(suite, 'README'), 'prints 1 GiB\n');
  const control = [
    '[Preferences]',
    'xen-tree = xen-unstable',
    `shared_dir = ${shared}`,
    '',
    '[Locations]',
    'xen-unstable = http://127.0.0.1:1/xen-unstable.tar.gz',
    '',
    `[${TEST}]`,
    `source_url = ${suite}`,
    'test_dir = chatty',
    `run_command = yes "a line of test output that goes on and on" | head -c ${OUTPUT_BYTES}`,
    'timeout = 600',
    '',
    '[XENVM0]',
    `name = ${HOST}`,
    `tempdir = ${tempdir}`,
    'config =',
    `test1 = ${TEST}`,
    '',
  ].join('\n');
  const dir = join(shared, HOST);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'night'), '20250101T000000Z\n');
  writeFileSync(join(dir, 'xentest.conf'), control);
  const results = join(dir, 'results', TEST);
  return { shared, domainRoot, log: join(results, 'debug', 'run.log'), keyval: join(results, 'keyval') };
}

interface Sample {
  peakMiB: number;
  reportedMiB: number | undefined;
  samples: number;
  wallMs: number;
  runSeconds: number;
  logBytes: number;
  mibPerSecond: number;
}

async function oneRun(root: string): Promise<Sample> {
  const { shared, domainRoot, log, keyval } = prepare(root);
  const t0 = performance.now();
  const child = spawn(process.execPath, [CLI, 'run', '--hostname', HOST, '--shared-dir', shared, '--wait', '0'], {
    env: { ...process.env, XENTEST_ROOT: domainRoot },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid as number;
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  let lastKb = 0;
  let samples = 0;
  const sample = (): void => {
    const kb = vmHwmKb(pid);
    if (kb !== undefined) {
      lastKb = kb;
      samples++;
    }
  };
  sample();
  const timer = setInterval(sample, SAMPLE_MS);
  // 'exit', not 'close': once the process has exited, /proc shows a zombie without VmHWM.
  const exited = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.once('exit', (code, signal) => res({ code, signal })),
  );
  const wallMs = performance.now() - t0;
  clearInterval(timer);
  await new Promise<void>((res) => (child.stdout.readableEnded ? res() : child.stdout.once('close', () => res())));
  if (exited.code !== 0) throw new Error(`xentest run exited with ${exited.code ?? exited.signal}:\n${stdout}${stderr}`);
  const reported = /runner peak memory \(VmHWM\): (\d+) MiB/.exec(stdout);
  const logBytes = statSync(log).size;
  if (logBytes < OUTPUT_BYTES) throw new Error(`${log} holds ${logBytes} bytes, fewer than the ${OUTPUT_BYTES} the test printed`);
  const runSeconds = Number(readKeyval(keyval).get('run_seconds'));
  return {
    peakMiB: lastKb / 1024,
    reportedMiB: reported ? Number(reported[1]) : undefined,
    samples,
    wallMs,
    runSeconds,
    logBytes,
    mibPerSecond: logBytes / MiB / runSeconds,
  };
}

function positiveInt(name: string, value: string | undefined, dflt: number): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`bench:runner-memory: --${name} must be an integer >= 1, not "${value}"\n`);
    process.exit(64);
  }
  return n;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { runs: { type: 'string' } } });
  const runs = positiveInt('runs', values.runs, 3);
  const root = mkdtempSync(join(tmpdir(), 'xentest-bench-runner-memory-'));
  const results: Sample[] = [];
  console.log(`xentest run, one test printing ${OUTPUT_BYTES / MiB} MiB: ${runs} runs on node ${process.version}\n`);
  console.log(
    `${'run'.padEnd(4)} ${'peak MiB'.padStart(9)} ${'reported'.padStart(9)} ${'samples'.padStart(8)} ${'wall s'.padStart(7)} ${'run s'.padStart(7)} ${'MiB/s'.padStart(7)} ${'log MiB'.padStart(8)}`,
  );
  console.log('-'.repeat(66));
  try {
    for (let i = 0; i < runs; i++) {
      const dir = join(root, `run-${i}`);
      try {
        const s = await oneRun(dir);
        results.push(s);
        console.log(
          `${String(i + 1).padEnd(4)} ${s.peakMiB.toFixed(1).padStart(9)} ${(s.reportedMiB === undefined ? '?' : String(s.reportedMiB)).padStart(9)} ` +
            `${String(s.samples).padStart(8)} ${(s.wallMs / 1000).toFixed(2).padStart(7)} ${s.runSeconds.toFixed(2).padStart(7)} ` +
            `${s.mibPerSecond.toFixed(0).padStart(7)} ${(s.logBytes / MiB).toFixed(1).padStart(8)}`,
        );
      } finally {
        // 1 GiB a run: never leave more than one on the disk.
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  const peaks = results.map((s) => s.peakMiB);
  const med = median(peaks);
  const max = Math.max(...peaks);
  const reported = results.map((s) => s.reportedMiB).filter((x): x is number => x !== undefined);
  console.log('');
  console.log(`peak RSS (VmHWM, sampled every ${SAMPLE_MS} ms): median ${med.toFixed(1)} MiB, max ${max.toFixed(1)} MiB`);
  console.log(`peak RSS as the runner reports it:          ${reported.length ? `median ${median(reported)} MiB, max ${Math.max(...reported)} MiB` : 'not reported'}`);
  console.log(`throughput of the test's output to run.log: median ${median(results.map((s) => s.mibPerSecond)).toFixed(0)} MiB/s`);
  console.log(`wall time, spawn to exit:                   median ${(median(results.map((s) => s.wallMs)) / 1000).toFixed(2)} s`);
  console.log(`log size:                                   ${((results[0] as Sample).logBytes / MiB).toFixed(1)} MiB (${(results[0] as Sample).logBytes} bytes)`);
  const over = max >= PEAK_BAR_MIB;
  console.log(`runner peak memory: median ${med.toFixed(1)} MiB, max ${max.toFixed(1)} MiB (bar: ${PEAK_BAR_MIB} MiB) ${over ? 'OVER' : 'OK'}`);
  return over ? 1 : 0;
}

process.exitCode = await main();
