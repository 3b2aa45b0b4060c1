/**
 * `xentest report` as a user runs it, on a real night of the simulated host
 * (which stored itself in its state directory's results database): from the
 * database, from a night's directory with or without a database, printing
 * only, and the mistakes a user can make.
 */
import { expect } from 'chai';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { NightLab, TarballServer } from '../scripts/simhost/lab.js';
import { hasStackTrace, runXentest, type CliResult } from './support/cli.js';

function ok(r: CliResult, status: number): CliResult {
  expect(r.status, `${r.stdout}${r.stderr}`).to.equal(status);
  expect(hasStackTrace(r.stdout + r.stderr), r.stderr).to.equal(false);
  return r;
}

describe('xentest report on the command line', function () {
  this.timeout(120_000);
  let root: string;
  let night: string;
  let db: string;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'xentest-report-cli-'));
    mkdirSync(join(root, 'www'));
    const server = new TarballServer(join(root, 'www'));
    await server.start();
    const suite = join(root, 'suite');
    mkdirSync(suite);
    const lab = new NightLab(join(root, 'lab'), server, {
      tests: {
        passes: { source_url: suite, test_dir: 'suite', run_command: 'true' },
        fails: { source_url: suite, test_dir: 'suite', run_command: 'echo "it broke" >&2; exit 3' },
      },
    });
    try {
      night = (await lab.night()).dir;
      db = join(lab.stateDir, 'results.db');
    } finally {
      await lab.close();
      await server.stop();
    }
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const pages = (): { html: string; text: string } => ({ html: join(night, 'report.html'), text: join(night, 'report.txt') });

  it("makes the newest night's report from the database: both files written, the summary printed", () => {
    rmSync(pages().html);
    rmSync(pages().text);
    const r = ok(runXentest(['report', '--db', db]), 0);
    const id = basename(night);
    expect(r.stdout.split('\n')[0]).to.equal(`xentest simhost night ${id}: FAILING: no regressions; 1 known failure`);
    expect(r.stdout).to.include(`report: ${pages().html}`);
    expect(readFileSync(pages().text, 'utf8')).to.equal(r.stdout);
    expect(readFileSync(pages().html, 'utf8')).to.include('data-verdict="FAILING"').and.include('it broke');
    // By its id too, and with --out the page goes there.
    const out = join(root, 'elsewhere.html');
    ok(runXentest(['report', id, '--db', db, '--out', out]), 0);
    expect(readFileSync(out, 'utf8')).to.include(`night ${id} on simhost`);
  });

  it('--text prints the summary and writes nothing', () => {
    rmSync(pages().text, { force: true });
    const r = ok(runXentest(['report', '--text', '--db', db]), 0);
    expect(r.stdout).to.match(/^xentest simhost night \d{8}T\d{6}Z: FAILING/);
    expect(r.stdout).to.not.include('report: ');
    expect(existsSync(pages().text)).to.equal(false);
  });

  it('from a night directory without a usable database: made from the files, and it says it was not compared', () => {
    const r = ok(runXentest(['report', night, '--db', join(root, 'none', 'results.db')]), 0);
    expect(r.stdout).to.include('not compared with earlier nights:');
    expect(r.stdout.split('\n')[0]).to.match(/FAILING: no regressions; 1 failing test \(not compared with earlier nights\)$/);
    expect(readFileSync(pages().html, 'utf8')).to.include('id="not-compared"');
  });

  it('says what is wrong, without a stack trace: a night not there, its files moved, a bad option', () => {
    const missing = ok(runXentest(['report', '20000101T000000Z', '--db', db]), 64);
    expect(missing.stderr).to.include('no night 20000101T000000Z').and.include(`hint: the newest nights: ${basename(night)}`);

    const copy = join(root, 'copy.db');
    cpSync(db, copy);
    const moved = `${night}.moved`;
    renameSync(night, moved);
    try {
      const r = ok(runXentest(['report', '--db', copy]), 1);
      expect(r.stderr).to.include(`its files are not in ${night}`).and.include('xentest db rebuild');
    } finally {
      renameSync(moved, night);
    }

    expect(ok(runXentest(['report', '--nights', '0', '--db', db]), 64).stderr).to.include('--nights 0 is not a number of nights');
    expect(ok(runXentest(['report', '--text', '--out', 'x.html', '--db', db]), 64).stderr).to.include('--text writes nothing');
    expect(ok(runXentest(['report', join(root, 'www'), '--db', db]), 64).stderr).to.include("is not a night's directory");
    expect(ok(runXentest(['report', '--db', join(root, 'none.db')]), 69).stderr).to.include('none.db');
  });
});
