/**
 * kill -9 at every point of a night: at each step boundary and in the middle
 * of every step, in the build and in the resume after the reboot. After the
 * kill, a manual re-run (or, for a kill during the resume, the next boot)
 * must finish the night with every step completed exactly once, every
 * status.log line written exactly once, and no finished work repeated.
 */
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NightData } from '../agent/pipeline/journal.js';
import { NightLab, TarballServer, type AgentRun } from '../scripts/simhost/lab.js';
import { mapAtOnce, matrixWidth } from './support/pool.js';

const STEPS = [
  'fetch', 'build.xen', 'install.xen', 'bootloader', 'reboot',
  'profilers.start', 'domains.dispatch', 'domains.start', 'domains.wait', 'profilers.stop', 'domains.collect',
  'results.store', 'results.report',
];

function onlyNight(lab: NightLab): string {
  const nights = readdirSync(join(lab.stateDir, 'nights'));
  expect(nights, 'one night only').to.have.length(1);
  return join(lab.stateDir, 'nights', nights[0] as string);
}

function journal(dir: string): NightData {
  return JSON.parse(readFileSync(join(dir, 'journal.json'), 'utf8')) as NightData;
}

function withoutTimes(line: string): string {
  return line.replace(/\ttimestamp=\d+\tlocaltime=[^\t]*/, '').replace(/\tduration_ms=\d+/, '');
}

/** Commands a step ran, from the headers its log has for each. */
function commandsRun(dir: string, step: string): number {
  const log = join(dir, 'steps', `${step}.log`);
  return existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('$ ')).length : 0;
}

/** Occurrence-numbered checkpoints: "reboot:before#2" is the reboot step entered again after the boot. */
function numbered(names: string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((n) => {
    const k = (seen.get(n) ?? 0) + 1;
    seen.set(n, k);
    return `${n}#${k}`;
  });
}

describe('kill -9 at every point of a night', function () {
  this.timeout(1_800_000);
  let root: string;
  let server: TarballServer;
  let points: string[] = [];
  let reference: { make: Record<string, number>; tests: number } = { make: {}, tests: 0 };

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'xentest-crash-'));
    mkdirSync(join(root, 'www'));
    server = new TarballServer(join(root, 'www'));
    await server.start();
    // A good night, listing every checkpoint it passes.
    const log = join(root, 'reference.points');
    const lab = new NightLab(join(root, 'reference'), server, { resumeEnv: { XENTEST_CHECKPOINT_LOG: log } });
    const run = await lab.build({ XENTEST_CHECKPOINT_LOG: log });
    expect(run.status, run.stdout + run.stderr).to.equal(0);
    const boot = await lab.sim.waitForBoot(1, 60_000);
    expect(boot.resumeExitStatus).to.equal(0);
    // The night's own points (the runner in each domain has its own, and its own tests).
    points = numbered(readFileSync(log, 'utf8').split('\n').filter((l) => STEPS.includes(l.split(':')[0] as string)));
    const dir = onlyNight(lab);
    const db = new Database(join(lab.stateDir, 'results.db'), { readonly: true });
    const tests = (db.prepare('SELECT COUNT(*) AS n FROM tests').get() as { n: number }).n;
    db.close();
    expect(tests).to.be.greaterThan(0);
    reference = { make: Object.fromEntries(STEPS.map((s) => [s, commandsRun(dir, s)])), tests };
    await lab.close();
  });
  after(async () => {
    await server.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('passes a checkpoint before, at the start of, in the middle of, and at the end of every step', () => {
    for (const step of STEPS) {
      for (const p of ['before', 'started', 'middle', 'finishing', 'ended', 'done']) {
        expect(points, `${step}:${p}`).to.include(`${step}:${p}#1`);
      }
    }
    expect(points, 'the reboot step is entered again after the boot').to.include('reboot:before#2');
  });

  it('finishes the night exactly once whatever point the agent is killed at', async () => {
    expect(points.length).to.be.greaterThan(30);
    // Each point's problems, or null.
    const outcomes = await mapAtOnce(points, matrixWidth(), async (point, i): Promise<string | null> => {
      const once = join(root, `kill-${i}.once`);
      const env = { XENTEST_CHECKPOINT_LOG: join(root, `kill-${i}.points`), XENTEST_CRASH_AT: point, XENTEST_CRASH_ONCE: once };
      const lab = new NightLab(join(root, `kill-${i}`), server, { resumeEnv: env });
      const finished = (): boolean => {
        const nights = join(lab.stateDir, 'nights');
        if (!existsSync(nights) || readdirSync(nights).length === 0) return false;
        // Over once its outcome is known and its results are stored and reported.
        const j = journal(onlyNight(lab));
        return j.outcome !== undefined && j.steps.every((s) => !s.name.startsWith('results.') || s.state === 'done');
      };
      let run: AgentRun = await lab.build(env);
      let rebooting = run.status === 0;
      let boot = 0;
      let rounds = 0;
      // Drive the night to its end as the machine and its operator would.
      for (; rounds < 8 && !finished(); rounds++) {
        if (!rebooting) {
          // Killed before it asked for a reboot: the operator (or the scheduler) runs it again.
          run = await lab.build();
          rebooting = run.status === 0;
          continue;
        }
        const b = await lab.sim.waitForBoot(++boot, 60_000);
        rebooting = b.resumeExitStatus === 0 && !finished();
        if (b.resumeExitStatus !== 0 && !finished()) {
          // Killed during the resume at boot: the next boot continues the night.
          const c = await lab.sim.powerCycle();
          boot++;
          rebooting = c.resumeExitStatus === 0 && !finished();
        }
      }
      const dir = onlyNight(lab);
      const j = journal(dir);
      const lines = readFileSync(join(dir, 'status.log'), 'utf8').split('\n').filter((l) => l !== '').map(withoutTimes);
      const problems: string[] = [];
      if (j.outcome?.status !== 'GOOD') problems.push(`outcome ${JSON.stringify(j.outcome)}`);
      for (const s of j.steps) if (s.state !== 'done' || s.status !== 'GOOD') problems.push(`${s.name} ${s.state}/${s.status}`);
      const dupes = lines.filter((l, k) => lines.indexOf(l) !== k);
      if (dupes.length) problems.push(`duplicated lines: ${JSON.stringify(dupes)}`);
      for (const s of STEPS) {
        if (lines.filter((l) => l === `START\t----\t${s}\t`).length !== 1) problems.push(`START ${s} not exactly once`);
        if (lines.filter((l) => l.startsWith(`END GOOD\t----\t${s}\t`)).length !== 1) problems.push(`END ${s} not exactly once`);
      }
      for (const inner of ['reboot.start', 'reboot.verify']) {
        if (lines.filter((l) => l.startsWith(`\tGOOD\t----\t${inner}\t`)).length !== 1) problems.push(`${inner} not exactly once`);
      }
      // Finished work is never repeated: only a step killed while working runs its commands again.
      const [killedStep, phase] = (point.split('#')[0] as string).split(':') as [string, string];
      for (const s of ['build.xen', 'install.xen']) {
        // Killed in the middle: its command ran (or was running) and runs again. At 'started' none had run yet.
        const again = s === killedStep && phase === 'middle' ? 1 : 0;
        const ran = commandsRun(dir, s);
        if (ran !== (reference.make[s] ?? 0) + again) problems.push(`${s} ran ${ran} commands (expected ${(reference.make[s] ?? 0) + again})`);
      }
      if (lab.sim.running().hypervisor!.version !== '4.19-unstable') problems.push('not running the new build');
      // Stored once, whole, and reported, whatever was killed on the way.
      if (!existsSync(join(dir, 'report.html')) || !existsSync(join(dir, 'report.txt'))) problems.push('no report');
      const db = new Database(join(lab.stateDir, 'results.db'), { readonly: true });
      try {
        const nights = db.prepare('SELECT COUNT(*) AS n FROM nights').get() as { n: number };
        const tests = db.prepare('SELECT COUNT(*) AS n FROM tests').get() as { n: number };
        if (nights.n !== 1 || tests.n !== reference.tests) problems.push(`database: ${nights.n} nights, ${tests.n} tests (expected 1, ${reference.tests})`);
      } finally {
        db.close();
      }
      await lab.close();
      return problems.length ? `${point} (${rounds} rounds): ${problems.join('; ')}` : null;
    });
    const failures = outcomes.filter((o): o is string => o !== null);
    expect(failures, failures.join('\n')).to.deep.equal([]);
  });
});
