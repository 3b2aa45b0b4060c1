/**
 * The agent's own cost on a simulated night.
 *
 *   npm run build && npm run bench:night [-- --runs N]
 *
 * For a good night (fetch over HTTP, make, make install, update-grub,
 * grub-reboot, reboot, resume, xl info, grub-set-default) it measures the
 * wall time of the two agent processes (`xentest build`, and `xentest resume`
 * run by the simulated boot) and subtracts the time of the commands they ran,
 * as the journal records it: what is left is the agent's own time. Then an
 * unchanged-tree night: `xentest build` again, end to end. Medians and
 * extremes over N runs; the bars are 2 s and 3 s.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { NightData } from '../../agent/pipeline/journal.js';
import { NightLab, TarballServer } from '../simhost/lab.js';

const OWN_TIME_BAR_MS = 2000;
const UNCHANGED_BAR_MS = 3000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function journalOf(lab: NightLab, index: number): NightData {
  const nights = readdirSync(join(lab.stateDir, 'nights')).sort();
  return JSON.parse(readFileSync(join(lab.stateDir, 'nights', nights[index] as string, 'journal.json'), 'utf8')) as NightData;
}

interface Sample {
  buildMs: number;
  resumeMs: number;
  commandMs: number;
  ownMs: number;
  unchangedMs: number;
}

async function oneNight(root: string, server: TarballServer, i: number): Promise<Sample> {
  const lab = new NightLab(join(root, `lab-${i}`), server);
  const build = await lab.build();
  if (build.status !== 0) throw new Error(`xentest build failed:\n${build.stdout}${build.stderr}`);
  const boot = await lab.sim.waitForBoot(1, 120_000);
  if (boot.resumeExitStatus !== 0 || !boot.resume?.startedAt || !boot.resume.finishedAt) {
    throw new Error(`the resume at boot failed: ${JSON.stringify(boot.resume)}`);
  }
  const resumeMs = Date.parse(boot.resume.finishedAt) - Date.parse(boot.resume.startedAt);
  const commandMs = journalOf(lab, 0).steps.reduce((sum, s) => sum + (s.commandMs ?? 0), 0);
  const unchanged = await lab.build();
  if (unchanged.status !== 0 || !/unchanged since night/.test(unchanged.stdout)) {
    throw new Error(`the unchanged night did not skip the build:\n${unchanged.stdout}${unchanged.stderr}`);
  }
  return { buildMs: build.ms, resumeMs, commandMs, ownMs: build.ms + resumeMs - commandMs, unchangedMs: unchanged.ms };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '7' } } });
  const runs = Number(values.runs);
  const root = mkdtempSync(join(tmpdir(), 'xentest-bench-night-'));
  mkdirSync(join(root, 'www'));
  const server = new TarballServer(join(root, 'www'));
  await server.start();
  try {
    await oneNight(root, server, -1); // warm-up: caches, page cache, the simulated host's image
    const samples: Sample[] = [];
    for (let i = 0; i < runs; i++) samples.push(await oneNight(root, server, i));
    const row = (label: string, pick: (s: Sample) => number): string => {
      const xs = samples.map(pick);
      return `${label.padEnd(44)} ${median(xs).toFixed(0).padStart(7)} ${Math.min(...xs).toFixed(0).padStart(7)} ${Math.max(...xs).toFixed(0).padStart(7)}`;
    };
    console.log(`simulated nights: ${runs} runs after a warm-up, on ${process.version}\n`);
    console.log(`${'ms'.padEnd(44)} ${'median'.padStart(7)} ${'min'.padStart(7)} ${'max'.padStart(7)}`);
    console.log('-'.repeat(68));
    console.log(row('good night: xentest build (wall)', (s) => s.buildMs));
    console.log(row('good night: xentest resume at boot (wall)', (s) => s.resumeMs));
    console.log(row('good night: commands run (make, grub, xl...)', (s) => s.commandMs));
    console.log(row("good night: the agent's own time", (s) => s.ownMs));
    console.log(row('unchanged-tree night: xentest build (wall)', (s) => s.unchangedMs));
    const own = median(samples.map((s) => s.ownMs));
    const unchanged = median(samples.map((s) => s.unchangedMs));
    console.log('');
    console.log(`${own < OWN_TIME_BAR_MS ? 'PASS' : 'FAIL'}: agent's own time ${own.toFixed(0)} ms (bar ${OWN_TIME_BAR_MS} ms, median)`);
    console.log(`${unchanged < UNCHANGED_BAR_MS ? 'PASS' : 'FAIL'}: unchanged-tree night ${unchanged.toFixed(0)} ms (bar ${UNCHANGED_BAR_MS} ms, median)`);
  } finally {
    await server.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
