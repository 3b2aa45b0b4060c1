/**
 * The status.log parser on a 1,000,000-line log.
 *
 *   npm run build && npm run bench:parse [-- --runs N] [--lines N] [--keep]
 *
 * A log is generated the way a long night writes one: an INFO kernel= line
 * and a reboot group now and then, client jobs (START ---- ----) holding the
 * tests, tests with a sysinfo group inside, job-level and in-test warnings,
 * failures with traceback continuation lines, tests made of a single status
 * line, about four lines per test. Each measurement runs in a fresh child
 * process (`node dist/scripts/bench/parse.js --child MODE FILE`), so its
 * memory is the parse's alone:
 *
 *   full     parseStatusLogFile: every test object, in the reference's order;
 *   summary  summariseStatusLogFile: counts per status, no test objects.
 *
 * Figures: lines/s and wall time of the parse (measured in the child, from
 * opening the file to the last result), the child's wall time from spawn to
 * exit, and its peak RSS (VmHWM from /proc/self/status, read by the child as
 * it finishes). Medians of N runs (default 5). The bar, for the summary
 * mode: parse under 1 s and peak under 150 MB; exit 1 if over.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseStatusLogFile, summariseStatusLogFile } from '../../shared/tko/results-dir.js';

const SCRIPT = fileURLToPath(import.meta.url);
const BAR_SECONDS = 1;
const BAR_MB = 150;
const MB = 1e6;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function vmHwmBytes(): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
function localtime(t: number): string {
  const d = new Date(t * 1000);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${MONTHS[d.getUTCMonth()]} ${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
}

/** Deterministic, so every run parses the same log. */
function prng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Write the log; returns its number of lines and the number of tests in it. */
function generate(file: string, targetLines: number): { lines: number; tests: number } {
  const fd = openSync(file, 'w');
  const rnd = prng(42);
  let out = '';
  let lines = 0;
  let tests = 0;
  let t = 1700000000;
  let kernel = 0;
  const line = (indent: number, status: string, subdir: string, name: string, reason = '', extra = ''): void => {
    t += 1;
    out += `${'\t'.repeat(indent)}${status}\t${subdir}\t${name}\t${extra}timestamp=${t}\tlocaltime=${localtime(t)}\t${reason}\n`;
    lines++;
    if (out.length > 1 << 20) {
      writeSync(fd, out);
      out = '';
    }
  };
  const cont = (text: string): void => {
    out += `  ${text}\n`;
    lines++;
  };
  const reboot = (): void => {
    kernel++;
    const release = `4.19.0-${kernel}-amd64`;
    line(0, 'INFO', '----', '----', '', `kernel=${release}-autotest\t`);
    line(0, 'START', '----', 'reboot');
    line(1, 'GOOD', '----', 'reboot.start');
    line(1, 'GOOD', '----', 'reboot.verify', release);
    line(0, 'END GOOD', '----', 'reboot', '', `kernel=${release}\tpatch0=xsa-123 http://xenbits.xen.org/xsa/xsa123.patch 0123456789abcdef\t`);
    tests++;
  };
  while (lines < targetLines) {
    reboot();
    line(0, 'START', '----', '----');
    tests++; // CLIENT_JOB.<n>
    const inClient = 2000 + Math.floor(rnd() * 2000);
    for (let i = 0; i < inClient && lines < targetLines - 12; i++) {
      const r = rnd();
      const name = `suite${i % 97}.case_${i}`;
      tests++;
      if (r < 0.35) {
        line(1, 'START', name, name, '', 'timeout=1800\t');
        line(2, 'GOOD', name, name, 'completed successfully');
        line(1, 'END GOOD', name, name);
      } else if (r < 0.7) {
        line(1, 'START', name, name, '', 'timeout=1800\t');
        line(2, 'START', '----', '----');
        line(3, 'GOOD', '----', 'sysinfo.before');
        line(2, 'END GOOD', '----', '----');
        line(2, 'GOOD', name, name, 'completed successfully');
        line(1, 'END GOOD', name, name);
      } else if (r < 0.8) {
        line(1, 'START', name, name);
        line(2, 'WARN', '----', '----', 'BUG: soft lockup - CPU#3 stuck for 56s!');
        line(2, 'GOOD', name, name, 'completed successfully');
        line(1, 'END WARN', name, name);
      } else if (r < 0.9) {
        line(1, 'START', name, name);
        line(2, 'FAIL', name, name, `Timeout reached after ${1800 + i} seconds`);
        cont('Traceback (most recent call last):');
        line(1, 'END FAIL', name, name);
      } else if (r < 0.97) {
        line(1, 'GOOD', '----', `mkfs -t ext4 /dev/sdb${i % 9}`);
      } else {
        line(1, 'WARN', '----', '----', 'job-level warning: clock skew');
        tests--;
      }
    }
    line(0, 'END GOOD', '----', '----');
  }
  writeSync(fd, out);
  closeSync(fd);
  return { lines, tests: tests + 1 /* SERVER_JOB */ };
}

interface ChildResult {
  mode: string;
  tests: number;
  parseMs: number;
  hwm: number;
}

function child(mode: string, file: string): void {
  const t0 = performance.now();
  const tests =
    mode === 'full'
      ? parseStatusLogFile(file, { serverJobStatus: 'GOOD' }).length
      : summariseStatusLogFile(file, { serverJobStatus: 'GOOD' }).tests;
  const parseMs = performance.now() - t0;
  const result: ChildResult = { mode, tests, parseMs, hwm: vmHwmBytes() };
  process.stdout.write(JSON.stringify(result) + '\n');
}

function main(): number {
  const { values } = parseArgs({
    options: {
      child: { type: 'string' },
      file: { type: 'string' },
      runs: { type: 'string', default: '5' },
      lines: { type: 'string', default: '1000000' },
      keep: { type: 'boolean', default: false },
    },
  });
  if (values.child !== undefined) {
    child(values.child, values.file!);
    return 0;
  }
  const runs = Number(values.runs);
  const dir = mkdtempSync(join(tmpdir(), 'xentest-bench-parse-'));
  try {
    const file = join(dir, 'status.log');
    const g0 = performance.now();
    const { lines, tests } = generate(file, Number(values.lines));
    const size = statSync(file).size;
    console.log(
      `status.log: ${lines.toLocaleString('en')} lines, ${tests.toLocaleString('en')} tests, ${(size / MB).toFixed(1)} MB ` +
        `(generated in ${((performance.now() - g0) / 1000).toFixed(1)} s)`,
    );
    let over = false;
    for (const mode of ['full', 'summary']) {
      const results: ChildResult[] = [];
      const walls: number[] = [];
      for (let i = 0; i < runs; i++) {
        const w0 = performance.now();
        const r = spawnSync(process.execPath, [SCRIPT, '--child', mode, '--file', file], { encoding: 'utf8' });
        walls.push(performance.now() - w0);
        if (r.status !== 0) {
          process.stderr.write(r.stderr);
          throw new Error(`the ${mode} child failed (exit ${r.status})`);
        }
        results.push(JSON.parse(r.stdout) as ChildResult);
      }
      const parseMs = median(results.map((r) => r.parseMs));
      const hwm = median(results.map((r) => r.hwm));
      const wall = median(walls);
      const counted = results[0]!.tests;
      const label = mode === 'full' ? 'full (all tests)' : 'summary-only';
      const barred = mode === 'summary';
      const ok = parseMs < BAR_SECONDS * 1000 && hwm < BAR_MB * MB;
      if (barred && !ok) over = true;
      console.log(
        `${label.padEnd(17)} parse ${(parseMs / 1000).toFixed(3)} s  ${Math.round(lines / (parseMs / 1000)).toLocaleString('en')} lines/s  ` +
          `process ${(wall / 1000).toFixed(3)} s  peak RSS ${(hwm / MB).toFixed(1)} MB  tests ${counted.toLocaleString('en')}` +
          (barred ? `  ${ok ? 'OK' : 'OVER'} (bar: < ${BAR_SECONDS} s, < ${BAR_MB} MB)` : ''),
      );
      console.log(`${''.padEnd(17)} runs: ${results.map((r) => (r.parseMs / 1000).toFixed(3)).join(' ')} s; ${results.map((r) => (r.hwm / MB).toFixed(0)).join(' ')} MB`);
    }
    if (values.keep) console.log(`kept ${file}`);
    return over ? 1 : 0;
  } finally {
    if (!values.keep) rmSync(dir, { recursive: true, force: true });
  }
}

process.exitCode = main();
