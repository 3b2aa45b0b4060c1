/**
 * xenfc's speed on the simulated hypervisor.
 *
 *   npm run build && npm run bench:xenfc [-- --runs N] [--loops N]
 *
 * Runs the command, `xenfc --backend sim -q -l 1000000`, N times
 * (default 5, seeds 1..N) as a user would, and reports, as medians:
 *   command   loops / the whole command's wall time (Node's start included);
 *   loop      loops / the time between "Target:" and "Summary:" as seen on
 *             its output (the fuzzing loop alone, minus start-up), and the
 *             calls really sent (not withheld by the safety rules) per second.
 * The bar: the whole command at 500,000 calls/s or more; exit 1 if under.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const XENFC = fileURLToPath(new URL('../../../bin/xenfc.js', import.meta.url));
const BAR = 500_000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** One run: wall time of the command, and the time from its "Target:" line to its "Summary:" line. */
function once(loops: number, seed: number): Promise<{ wallMs: number; loopMs: number; sent: number; summary: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let target = 0;
    let summaryAt = 0;
    let out = '';
    const child = spawn(process.execPath, [XENFC, '--backend', 'sim', '-q', '-l', String(loops), '-s', String(seed)], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!target && out.includes('\nTarget:')) target = performance.now();
      if (!summaryAt && out.includes('\nSummary:')) summaryAt = performance.now();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = performance.now() - t0;
      if (code !== 0) return reject(new Error(`xenfc exited with ${code}:\n${out}`));
      const m = /^Summary: \d+ calls: (\d+) passed, (\d+) failed/m.exec(out);
      resolve({ wallMs, loopMs: summaryAt - target, sent: m ? Number(m[1]) + Number(m[2]) : 0, summary: /^Summary: .*$/m.exec(out)?.[0] ?? '' });
    });
  });
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, loops: { type: 'string', default: '1000000' } } });
  const runs = Number(values.runs);
  const loops = Number(values.loops);
  const wall: number[] = [];
  const loop: number[] = [];
  const sentRate: number[] = [];
  console.log(`xenfc --backend sim -q -l ${loops}, ${runs} runs`);
  for (let i = 1; i <= runs; i++) {
    const r = await once(loops, i);
    wall.push(r.wallMs);
    loop.push(r.loopMs);
    sentRate.push(r.sent / (r.loopMs / 1000));
    console.log(`  run ${i}: ${(r.wallMs / 1000).toFixed(3)} s whole command, ${(r.loopMs / 1000).toFixed(3)} s fuzzing; ${r.summary}`);
  }
  const command = loops / (median(wall) / 1000);
  const calls = loops / (median(loop) / 1000);
  console.log(`median whole command: ${(median(wall) / 1000).toFixed(3)} s = ${Math.round(command).toLocaleString('en')} loops/s (bar ${BAR.toLocaleString('en')})`);
  console.log(`median fuzzing loop:  ${(median(loop) / 1000).toFixed(3)} s = ${Math.round(calls).toLocaleString('en')} loops/s, ${Math.round(median(sentRate)).toLocaleString('en')} calls sent/s`);
  return command >= BAR ? 0 : 1;
}

process.exitCode = await main();
