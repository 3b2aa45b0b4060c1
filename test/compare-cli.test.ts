/**
 * `xentest db ingest`, `xentest db rebuild` and `xentest compare` as a user
 * runs them (bin/xentest.js), on two real nights of the simulated host: a
 * test that passes the first night and fails the second, after a new build.
 * On SQLite, and on PostgreSQL when XENTEST_TEST_PG_URL is set.
 */
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { NEW_XEN, NightLab, TarballServer } from '../scripts/simhost/lab.js';
import { hasStackTrace, runXentest, type CliResult } from './support/cli.js';
import { describeDriver, DRIVERS } from './support/results-db.js';

interface Nights {
  root: string;
  stateDir: string;
  first: string;
  second: string;
}

/** Two nights on the simulated host: "breaks" passes the first, fails the second (on a new build); "steady" passes both. */
async function twoNights(): Promise<Nights> {
  const root = mkdtempSync(join(tmpdir(), 'xentest-compare-cli-'));
  mkdirSync(join(root, 'www'));
  const server = new TarballServer(join(root, 'www'));
  await server.start();
  const suite = join(root, 'suite');
  mkdirSync(suite);
  const flag = join(root, 'break-it');
  const lab = new NightLab(join(root, 'lab'), server, {
    guests: ['vm1'],
    tests: {
      steady: { source_url: suite, test_dir: 'suite', run_command: 'true' },
      breaks: { source_url: suite, test_dir: 'suite', run_command: `test ! -e ${flag} || { echo "it broke" >&2; exit 3; }` },
    },
  });
  try {
    const first = (await lab.night()).dir;
    // A new Xen tree (another version) and the test now fails.
    lab.writeTarball({ version: { ...NEW_XEN, extra: '-rc1' } });
    writeFileSync(flag, '');
    const build = await lab.build();
    if (build.status !== 0) throw new Error(`the second night did not start:\n${build.stdout}${build.stderr}`);
    await lab.sim.waitForBoot(2, 120_000);
    const second = lab.nightDir() as string;
    return { root, stateDir: lab.stateDir, first, second };
  } finally {
    await lab.close();
    await server.stop();
  }
}

function ok(r: CliResult, status: number): CliResult {
  expect(r.status, `${r.stdout}${r.stderr}`).to.equal(status);
  expect(hasStackTrace(r.stdout + r.stderr), r.stderr).to.equal(false);
  return r;
}

describe('xentest db / xentest compare on the command line', function () {
  this.timeout(180_000);
  let nights: Nights;
  before(async () => {
    nights = await twoNights();
  });
  after(() => {
    rmSync(nights.root, { recursive: true, force: true });
  });

  for (const driver of DRIVERS) {
    describeDriver(driver, 'end to end', ({ fresh }) => {
      it('ingests the nights, shows the regression first against the night it passed, and rebuilds from the files alone', async () => {
        const db = (await fresh()).location;
        const [n1, n2] = [basename(nights.first), basename(nights.second)];

        const ingest = ok(runXentest(['db', 'ingest', '--db', db, nights.first, nights.second]), 0);
        expect(ingest.stdout).to.include(`ingested night ${n1} of simhost: 2 domains, 6 tests`);
        expect(ingest.stdout).to.include(`ingested night ${n2} of simhost: 2 domains, 6 tests`);

        const compare = ok(runXentest(['compare', '--db', db]), 1);
        const lines = compare.stdout.split('\n');
        expect(lines[0]).to.match(new RegExp(`^night ${n2} of simhost \\(GOOD, started `));
        expect(lines[1]).to.equal('each test compared with the last earlier night that ran it on this machine and domain');
        expect(lines[3]).to.equal('regressions (2):');
        expect(lines[4]).to.match(new RegExp(`^  simhost/breaks +FAIL +REGR\\. vs\\. night ${n1} \\(GOOD\\): run_command exited with status 3 after .*: it broke$`));
        expect(lines[5]).to.match(new RegExp(`^  vm1/breaks +FAIL +REGR\\. vs\\. night ${n1} \\(GOOD\\)`));
        expect(lines.at(-2)).to.equal('6 tests: 2 regressions, 4 passed as before');

        const json = JSON.parse(ok(runXentest(['compare', '--json', '--db', db]), 1).stdout) as {
          night: { night: string; machine: string; build: { xenTree: string } };
          counts: Record<string, number>;
          tests: Array<{ domain: string; name: string; class: string; base: { night: string; status: string } | null }>;
        };
        expect(json.night).to.include({ night: n2, machine: 'simhost' });
        expect(json.night.build.xenTree).to.match(/^sha256:/);
        expect(json.counts).to.include({ regression: 2, pass: 4, new: 0, gone: 0 });
        expect(json.tests.filter((t) => t.class === 'regression').map((t) => [t.domain, t.name, t.base])).to.deep.equal([
          ['simhost', 'breaks', { night: n1, status: 'GOOD' }],
          ['vm1', 'breaks', { night: n1, status: 'GOOD' }],
        ]);

        // The first night: everything new. --base: the second against the first explicitly.
        expect(ok(runXentest(['compare', n1, '--db', db]), 0).stdout).to.include('6 tests: 0 regressions, 6 new');
        const based = ok(runXentest(['compare', n2, '--base', n1, '--machine', 'simhost', '--db', db]), 1);
        expect(based.stdout.split('\n')[1]).to.match(new RegExp(`^compared with night ${n1} of simhost \\(GOOD`));

        // Ingesting again replaces; rebuilding from the state directory gives the same answers.
        expect(ok(runXentest(['db', 'ingest', '--db', db, nights.second]), 0).stdout).to.include(`replaced night ${n2}`);
        const rebuild = ok(runXentest(['db', 'rebuild', '--db', db, nights.stateDir]), 0);
        expect(rebuild.stdout).to.match(new RegExp(`^rebuilt .* from ${join(nights.stateDir, 'nights')}: 2 nights of 1 machine, 12 tests, in [\\d.]+ s\\n$`));
        expect(ok(runXentest(['compare', '--db', db]), 1).stdout).to.equal(compare.stdout);

        // XENTEST_DB names the database as --db does.
        expect(ok(runXentest(['compare', '--json'], { env: { ...process.env, XENTEST_DB: db } }), 1).stdout).to.include('"regression": 2');
      });
    });
  }

  describe('mistakes a user can make', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'xentest-compare-cli-'));
    });
    afterEach(() => {
      rmSync(dir, { recursive: true, force: true });
    });

    it('uses <state dir>/results.db by default, and says how to make it when it is not there', () => {
      const env = { ...process.env, XENTEST_STATE_DIR: dir, XENTEST_DB: '' };
      const missing = ok(runXentest(['compare'], { env }), 69);
      expect(missing.stderr).to.equal(
        `xentest: there is no results database at ${join(dir, 'results.db')}\n` +
          `  hint: make it from the nights' files with "xentest db rebuild STATE_DIR", or point --db (or XENTEST_DB) at it\n`,
      );
      expect(ok(runXentest(['db', 'ingest', nights.first], { env }), 0).stdout).to.include(`results database: ${join(dir, 'results.db')}`);
      expect(ok(runXentest(['compare'], { env }), 0).stdout).to.include('6 new');
    });

    it('a night that is not there, or not a night: a clear message and a status, the others still stored', () => {
      const db = join(dir, 'r.db');
      const r = ok(runXentest(['db', 'ingest', '--db', db, dir, nights.first, join(dir, 'nope')]), 1);
      expect(r.stdout).to.include(`ingested night ${basename(nights.first)}`);
      expect(r.stderr).to.include(`xentest: ${dir}: not stored: ${dir} is not a night's results directory: it has no journal.json\n`);
      expect(r.stderr).to.include(`xentest: ${join(dir, 'nope')}: not stored: no such directory\n`);
      const unknown = ok(runXentest(['compare', '20990101T000000Z', '--db', db]), 64);
      expect(unknown.stderr).to.equal(
        `xentest: compare: no night 20990101T000000Z in the results database (${db})\n  hint: the newest nights: ${basename(nights.first)} (simhost)\n`,
      );
      expect(ok(runXentest(['compare', basename(nights.first), '--base', '20990101T000000Z', '--db', db]), 64).stderr).to.match(
        /no night 20990101T000000Z of machine simhost/,
      );
    });

    it('rebuild refuses a directory without nights and leaves the database as it was', () => {
      const db = join(dir, 'r.db');
      ok(runXentest(['db', 'ingest', '--db', db, nights.first]), 0);
      mkdirSync(join(dir, 'empty'));
      const r = ok(runXentest(['db', 'rebuild', '--db', db, join(dir, 'empty')]), 64);
      expect(r.stderr).to.match(/holds no nights \(no directory with a journal\.json\); the database was left as it was/);
      expect(ok(runXentest(['compare', '--db', db]), 0).stdout).to.include('6 new');
      expect(ok(runXentest(['db', 'rebuild', '--db', db, join(dir, 'not-there')]), 64).stderr).to.match(/is not a directory/);
    });

    it('a bad --db, an unreachable server, a file that is not a database', () => {
      expect(ok(runXentest(['compare', '--db', 'mysql://db.example/results']), 64).stderr).to.match(/SQLite or PostgreSQL, not mysql/);
      const down = ok(runXentest(['compare', '--db', 'postgres://xentest:secret@127.0.0.1:1/results']), 69);
      expect(down.stderr).to.match(/^xentest: cannot reach the results database postgres:\/\/xentest:\*\*\*@127\.0\.0\.1:1\/results: /);
      expect(down.stderr).to.not.include('secret');
      writeFileSync(join(dir, 'junk.db'), 'this is not a database, and it is long enough to have a header '.repeat(20));
      expect(ok(runXentest(['compare', '--db', join(dir, 'junk.db')]), 69).stderr).to.match(/junk\.db is not a usable SQLite database/);
      expect(ok(runXentest(['db', 'ingest', '--db', join(dir, 'no', 'such', 'dir.db'), nights.first]), 69).stderr).to.match(
        /directory .*no\/such does not exist/,
      );
    });

    it('usage mistakes exit 64, and help lists the commands', () => {
      expect(ok(runXentest(['db']), 64).stderr).to.match(/db: say what to do/);
      expect(ok(runXentest(['db', 'drop']), 64).stderr).to.match(/unknown subcommand "drop"/);
      expect(ok(runXentest(['db', 'ingest']), 64).stderr).to.match(/no night directory given/);
      expect(ok(runXentest(['compare', '--bogus']), 64).stderr).to.match(/bogus/);
      expect(ok(runXentest(['compare', 'a', 'b']), 64).stderr).to.match(/one night at a time/);
      const help = ok(runXentest(['help']), 0).stdout;
      expect(help).to.match(/xentest db ingest\|rebuild/).and.match(/xentest compare \[NIGHT\] \[--base NIGHT\]/);
    });
  });
});
