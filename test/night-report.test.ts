/**
 * Two nights on the simulated Xen host with the demo's dom0, two guests and
 * two suites: every night ends with its results in the results database and
 * its morning report written. The second night runs a changed suite that
 * breaks in one guest only; its report names exactly that one regression,
 * and the page is looked at in headless Chromium: verdict first, the
 * regression with its log, the charts of both nights, nothing fetched, and
 * the guest's output shown as text, never run as markup.
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NightData } from '../agent/pipeline/journal.js';
import { setUpDemo, type DemoNight } from '../scripts/simhost/demo.js';
import { NightLab, TarballServer } from '../scripts/simhost/lab.js';
import { launchChromium } from './support/browser.js';
import { REPO_ROOT, XENTEST_BIN } from './support/cli.js';

function journalOf(dir: string): NightData {
  return JSON.parse(readFileSync(join(dir, 'journal.json'), 'utf8')) as NightData;
}

/** The report, and the run.log of every test that exited non-zero: what a night that went wrong needs to be understood. */
function reportWithFailedLogs(dir: string): string {
  const parts = [readFileSync(join(dir, 'report.txt'), 'utf8')];
  const domains = join(dir, 'domains');
  for (const d of existsSync(domains) ? readdirSync(domains) : []) {
    for (const t of readdirSync(join(domains, d))) {
      const log = join(domains, d, t, 'debug', 'run.log');
      if (!existsSync(log)) continue;
      const text = readFileSync(log, 'utf8');
      if (/^# exited with status [1-9]/m.test(text) || /^# killed/m.test(text)) parts.push(`--- ${d}/${t}/debug/run.log:\n${text.slice(-20_000)}`);
    }
  }
  return parts.join('\n');
}

function stepState(dir: string, name: string): string {
  const s = journalOf(dir).steps.find((x) => x.name === name);
  return `${s?.state}/${s?.status}`;
}

/**
 * The sieve suite again, changed so that it fails in vm1 only (as a change
 * that breaks on one guest would), printing markup that a report must show
 * as text: an image that would be fetched from `leakUrl`, and a script.
 */
function breakSieveInVm1(wwwDir: string, leakUrl: string): void {
  const tarball = join(wwwDir, 'suites', 'sieve-1.0.tar.gz');
  const tmp = mkdtempSync(join(tmpdir(), 'xentest-broken-sieve-'));
  try {
    execFileSync('tar', ['-xzf', tarball, '-C', tmp]);
    writeFileSync(
      join(tmp, 'sieve-1.0', 'run'),
      [
        '#!/bin/sh',
        'set -e',
        'mkdir -p ../logs/sieve',
        'if [ "$XENTEST_HOSTNAME" = vm1 ]; then',
        '  echo "sieve: a count that is one short"',
        `  echo '<script>document.title="pwned"</script>'`,
        `  echo 'primes below 1000000: 78497 (expected 78498) <img src="${leakUrl}">'`,
        '  exit 1',
        'fi',
        './sieve 1000000 78498 | tee ../logs/sieve/result.txt',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    execFileSync('tar', ['-czf', tarball, '--owner=0', '--group=0', '--numeric-owner', '-C', tmp, 'sieve-1.0']);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

describe('the morning report after nights on the simulated Xen host', function () {
  this.timeout(240_000);
  let root: string;
  let demo: DemoNight;
  let night1: string;
  let night2: string;
  let leakUrl: string;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'xentest-night-report-'));
    demo = await setUpDemo(root);
    leakUrl = demo.server.url('leak.png');
    night1 = (await demo.lab.night({}, 120_000)).dir;
    breakSieveInVm1(demo.server.dir, leakUrl);
    // The tree has not changed: the night tests the running build again, without building or rebooting.
    const second = await demo.lab.build({}, 120_000);
    expect(second.status, second.stdout + second.stderr).to.be.oneOf([0, 1]);
    night2 = demo.lab.nightDir() as string;
    expect(night2).to.not.equal(night1);
  });
  after(async () => {
    await demo?.lab.close();
    await demo?.server.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('the first night is stored and reported: PASS, every test new', () => {
    expect(stepState(night1, 'results.store')).to.equal('done/GOOD');
    expect(stepState(night1, 'results.report')).to.equal('done/GOOD');
    expect(journalOf(night1).outcome?.status).to.equal('GOOD');
    const text = readFileSync(join(night1, 'report.txt'), 'utf8');
    expect(text.split('\n')[0], reportWithFailedLogs(night1)).to.match(/^xentest simhost night \d{8}T\d{6}Z: PASS: all 12 tests passed$/);
    expect(text).to.include('compared with earlier nights: 0 regressions, 12 new');
    const html = readFileSync(join(night1, 'report.html'), 'utf8');
    expect(html).to.include('data-verdict="PASS"');
  });

  it('the second night reports exactly one regression: the test that broke in vm1', () => {
    expect(stepState(night2, 'results.store')).to.equal('done/GOOD');
    expect(stepState(night2, 'results.report')).to.equal('done/GOOD');
    const id1 = journalOf(night1).night;
    const id2 = journalOf(night2).night;
    const text = readFileSync(join(night2, 'report.txt'), 'utf8');
    expect(text.split('\n')[0], text).to.equal(`xentest simhost night ${id2}: REGRESSED: 1 regression: vm1/sieve`);
    expect(text, text).to.include('compared with earlier nights: 1 regression, 11 passed as before');
    expect(text).to.match(new RegExp(`^  vm1/sieve  FAIL  REGR\\. vs\\. night ${id1} \\(GOOD\\) \\(passed in domain simhost this night\\)$`, 'm'));
    // The end of the test's run log is in the summary, as the guest wrote it.
    expect(text).to.include('| primes below 1000000: 78497 (expected 78498)');

    // The database agrees: xentest compare finds that one regression against the first night.
    const db = join(demo.lab.stateDir, 'results.db');
    const r = spawnSync(process.execPath, [XENTEST_BIN, 'compare', '--json', '--db', db], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(1);
    const c = JSON.parse(r.stdout) as { counts: Record<string, number>; tests: Array<{ domain: string; name: string; class: string; base: { night: string } | null }> };
    expect(c.counts.regression).to.equal(1);
    const regressions = c.tests.filter((t) => t.class === 'regression');
    expect(regressions.map((t) => `${t.domain}/${t.name}`)).to.deep.equal(['vm1/sieve']);
    expect(regressions[0]?.base?.night).to.equal(id1);

    // The newest report is also where a person looks each morning, in the state directory.
    expect(readFileSync(join(demo.lab.stateDir, 'report.html'), 'utf8')).to.equal(readFileSync(join(night2, 'report.html'), 'utf8'));
  });

  it('in headless Chromium: verdict first, the regression with its log, both nights charted, nothing fetched, no markup from the guest', async () => {
    const page0 = join(night2, 'report.html');
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const requests: string[] = [];
      const errors: string[] = [];
      page.on('request', (req) => requests.push(req.url()));
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`file://${page0}`);

      expect(requests).to.deep.equal([`file://${page0}`]);
      expect(errors).to.deep.equal([]);
      expect(await page.title()).to.match(/^xentest simhost \d{8}T\d{6}Z: REGRESSED$/);

      // The verdict is the first thing on the page.
      const verdict = page.locator('#verdict');
      expect(await verdict.getAttribute('data-verdict')).to.equal('REGRESSED');
      const box = await verdict.boundingBox();
      expect(box?.y).to.equal(0);
      expect(await page.locator('#headline').innerText()).to.equal('1 regression: vm1/sieve');

      // The first failure is the regression, with the end of its log.
      const first = page.locator('#failures article').first();
      expect(await first.getAttribute('data-class')).to.equal('regression');
      expect(await page.locator('#failures article[data-class="regression"]').count()).to.equal(1);
      expect(await first.locator('h3').innerText()).to.match(/vm1 \/ sieve FAIL/);
      expect(await first.locator('.detail').innerText()).to.match(/^REGR\. vs\. night \d{8}T\d{6}Z \(GOOD\)/);
      const excerpt = await first.locator('pre.excerpt').innerText();
      expect(excerpt).to.include('<script>document.title="pwned"</script>');
      expect(excerpt).to.include(`<img src="${leakUrl}">`);
      expect(await page.locator('img, script').count()).to.equal(0);

      // Each domain's tests, the broken one marked.
      expect(await page.locator('tr[data-domain="vm1"][data-test="sieve"] .cls').innerText()).to.equal('regression');
      expect(await page.locator('tr[data-domain="vm2"][data-test="sieve"] .status').innerText()).to.equal('GOOD');

      // Two nights in the chart: six passes, then five passes and one failure.
      const bars = await page.locator('#chart-results rect.bar').evaluateAll((els) =>
        els.map((e) => `${e.getAttribute('class')}=${e.getAttribute('data-count')}`),
      );
      expect(bars).to.deep.equal(['bar pass=12', 'bar pass=11', 'bar fail=1']);
      expect(await page.locator('#chart-durations rect.bar.night').count()).to.equal(2);

      const shot = join(tmpdir(), 'xentest-morning-report.png');
      await page.screenshot({ path: shot, fullPage: true });
      expect(statSync(shot).size).to.be.greaterThan(20_000);
      expect(readFileSync(shot).subarray(1, 4).toString()).to.equal('PNG');
    } finally {
      await browser.close();
    }
    // The guest's image was never asked for.
    expect(demo.server.requests.map((q) => q.path)).to.not.include('/leak.png');
    expect(existsSync(page0)).to.equal(true);
  });
});

describe('a night whose results database cannot be used', function () {
  this.timeout(120_000);
  let root: string;

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'xentest-night-nodb-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('loses nothing: results.store is a WARN that says how to store it later, the report is made from the files, the outcome stands', async () => {
    mkdirSync(join(root, 'www'));
    const server = new TarballServer(join(root, 'www'));
    await server.start();
    const lab = new NightLab(join(root, 'lab'), server, { preferences: { results_db: join(root, 'no', 'such', 'dir', 'results.db') } });
    try {
      const { dir } = await lab.night();
      const j = journalOf(dir);
      expect(j.outcome?.status).to.equal('GOOD');
      const store = j.steps.find((s) => s.name === 'results.store');
      expect(store?.status).to.equal('WARN');
      expect(store?.reason).to.include('not stored in the results database').and.include(`"xentest db ingest ${dir}" stores them later`);
      expect(stepState(dir, 'results.report')).to.equal('done/GOOD');
      const text = readFileSync(join(dir, 'report.txt'), 'utf8');
      expect(text.split('\n')[0]).to.match(/: PASS: all 1 test passed$/);
      expect(text).to.include('not compared with earlier nights: the night could not be stored in the results database');
      // And later, when the database is there, the files store the night whole.
      const db = join(root, 'later.db');
      const r = spawnSync(process.execPath, [XENTEST_BIN, 'db', 'ingest', '--db', db, dir], { cwd: REPO_ROOT, encoding: 'utf8' });
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout).to.include('1 domain, 2 tests');
    } finally {
      await lab.close();
      await server.stop();
    }
  });
});
