/**
 * A night's results read back from its files alone (agent/results/load.ts):
 * what the database, the exports and the report are made from.
 */
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNightRecord, NotANight } from '../agent/results/load.js';
import { NightLab, TarballServer } from '../scripts/simhost/lab.js';

describe('agent/results/load: a night from its files', function () {
  this.timeout(120_000);
  let root: string;
  let server: TarballServer;
  let lab: NightLab | undefined;

  beforeEach(async () => {
    root = mkdtempSync(join(tmpdir(), 'xentest-load-'));
    mkdirSync(join(root, 'www'));
    server = new TarballServer(join(root, 'www'));
    await server.start();
  });
  afterEach(async () => {
    await lab?.close();
    lab = undefined;
    await server.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('reads the machine, the build, every step, and each domain with its tests as TKO parses them', async () => {
    const suite = join(root, 'suite');
    mkdirSync(suite);
    lab = new NightLab(join(root, 'lab'), server, {
      guests: ['vm1', 'vm2'],
      tests: {
        passes: { source_url: suite, test_dir: 'suite', run_command: 'true' },
        fails: { source_url: suite, test_dir: 'suite', run_command: 'echo "no luck" >&2; exit 4' },
      },
    });
    lab.sim.setFaults({ createFails: { vm2: { stderr: 'libxl: error: cannot make domain: -6' } } });
    const { dir } = await lab.night();
    const night = loadNightRecord(dir);

    expect(night.machine).to.equal('simhost');
    expect(night.status).to.equal('WARN');
    expect(night.build.xenTree).to.match(/^sha256:[0-9a-f]{64}$/);
    expect(night.build.xenVersion).to.equal('4.19-unstable');
    expect(night.build.xenBuildId).to.match(/^[0-9a-f]{40}$/);
    expect(night.steps.map((s) => s.name)).to.include.members(['fetch', 'reboot', 'domains.wait']);
    expect(night.steps.find((s) => s.name === 'build.xen')).to.include({ status: 'GOOD' });

    expect(night.domains.map((d) => d.name)).to.deep.equal(['simhost', 'vm1', 'vm2']);
    const vm1 = night.domains[1]!;
    expect(vm1).to.include({ status: 'GOOD' });
    expect(vm1.tests.map((t) => [t.name, t.status, t.subdir])).to.deep.equal([
      ['SERVER_JOB', 'GOOD', '----'],
      ['passes', 'GOOD', 'passes'],
      ['fails', 'FAIL', 'fails'],
    ]);
    const fails = vm1.tests[2]!;
    expect(fails.reason).to.match(/^run_command exited with status 4 after .*: no luck$/);
    expect(fails.keyval).to.include({ domain: 'vm1', status: 'FAIL', exit_status: '4', privileged: 'no' });
    expect(fails.finished! - fails.started!).to.be.within(0, 5);

    const vm2 = night.domains[2]!;
    expect(vm2.status).to.equal('ERROR');
    expect(vm2.reason).to.include('libxl: error: cannot make domain: -6');
    expect(vm2.tests).to.deep.equal([]);
  });

  it('refuses a directory that is not a night, saying so', () => {
    expect(() => loadNightRecord(root)).to.throw(NotANight, `${root} is not a night's results directory: it has no journal.json`);
  });
});
