import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NightData } from '../agent/pipeline/journal.js';
import { NightLab, TarballServer, XENTEST_BIN } from '../scripts/simhost/lab.js';
import { runXentest } from './support/cli.js';

describe('xentest schedule', function () {
  this.timeout(120_000);
  let root: string;
  let server: TarballServer;
  beforeEach(async () => {
    root = mkdtempSync(join(tmpdir(), 'xentest-schedule-'));
    mkdirSync(join(root, 'www'));
    server = new TarballServer(join(root, 'www'));
    await server.start();
  });
  afterEach(async () => {
    await server.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('runs nights on the schedule, one at a time, and stops cleanly on SIGTERM', async () => {
    const lab = new NightLab(join(root, 'lab'), server, { preferences: { schedule: '*/2 * * * * *' } });
    const child = spawn(process.execPath, [XENTEST_BIN, 'schedule', lab.control], { env: lab.env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    // The first tick builds and reboots; the boot resumes; a later tick finds the tree unchanged.
    await lab.sim.waitForBoot(1, 60_000);
    const deadline = Date.now() + 30_000;
    const nights = (): string[] => (existsSync(join(lab.stateDir, 'nights')) ? readdirSync(join(lab.stateDir, 'nights')).sort() : []);
    while (nights().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGTERM');
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    await lab.close();
    expect(status, out).to.equal(0);
    expect(out).to.match(/schedule: stopped/);
    const journals = nights().map((n) => JSON.parse(readFileSync(join(lab.stateDir, 'nights', n, 'journal.json'), 'utf8')) as NightData);
    expect(journals.length, out).to.be.at.least(2);
    expect(journals[0]?.outcome?.status).to.equal('GOOD');
    expect(journals[1]?.steps[0]?.reason ?? '', 'the second night found the tree unchanged').to.match(/unchanged since night/);
    // Never two at once: each night started after the one before it had finished.
    for (let i = 1; i < journals.length; i++) {
      const prev = journals[i - 1]?.outcome?.finishedAt;
      if (prev) expect(Date.parse(journals[i]?.createdAt ?? '')).to.be.at.least(Date.parse(prev));
    }
  });

  it('says what to do when there is no schedule, or a bad one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xentest-schedule-'));
    try {
      const r = runXentest(['schedule', 'conf/paper.cfg']);
      expect(r.status).to.equal(64);
      expect(r.stderr).to.match(/has no schedule/).and.match(/schedule = 0 2 \* \* \*/);
      const bad = runXentest(['schedule', 'conf/paper.cfg', '--cron', '0 25 * * *']);
      expect(bad.status).to.equal(64);
      expect(bad.stderr).to.match(/hour field "25"/);
      expect(bad.stderr).not.to.match(/^\s+at /m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
