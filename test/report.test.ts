/**
 * The morning report's content (agent/results/report/): its verdict, the
 * order of its failures, the log excerpts and where they may be read from,
 * the text summary and the page's markup. Nights are made by hand, stored
 * in a real SQLite database and compared there; logs are real files.
 */
import { expect } from 'chai';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareNight } from '../agent/results/compare.js';
import { openResultsDb, resolveDbLocation } from '../agent/results/db/open.js';
import type { ResultsDb } from '../agent/results/db/store.js';
import type { NightRecord } from '../agent/results/record.js';
import { tailOf } from '../agent/results/report/excerpt.js';
import { renderReportHtml } from '../agent/results/report/html.js';
import { makeReport } from '../agent/results/report/make.js';
import { buildReport, type ReportData } from '../agent/results/report/model.js';
import { renderReportText } from '../agent/results/report/text.js';
import { nightRecord, type NightSpec } from './support/results-db.js';

describe('the morning report', () => {
  let root: string;
  let db: ResultsDb;

  beforeEach(async () => {
    root = mkdtempSync(join(tmpdir(), 'xentest-report-'));
    db = await openResultsDb(resolveDbLocation(join(root, 'results.db')), { create: true });
  });
  afterEach(async () => {
    await db.close();
    rmSync(root, { recursive: true, force: true });
  });

  /** A night of `spec` whose files are under root/nights/<id>: logs can be written there. */
  function night(day: number, spec: NightSpec, change: (r: NightRecord) => void = () => {}): NightRecord {
    const r = nightRecord(day, spec);
    r.dir = join(root, 'nights', r.night);
    mkdirSync(r.dir, { recursive: true });
    change(r);
    return r;
  }

  function writeLog(r: NightRecord, rel: string, text: string): string {
    const file = join(r.dir, rel);
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, text);
    return file;
  }

  async function reportOf(...nights: NightRecord[]): Promise<ReportData> {
    for (const n of nights) await db.ingest(n);
    const last = nights[nights.length - 1] as NightRecord;
    const comparison = await compareNight(db, { night: last.night, machine: last.machine });
    return buildReport({ record: last, comparison, history: await db.nightHistory(comparison.night, 30) });
  }

  it('PASS when every test of every domain passed; the job entries are not counted as tests', async () => {
    const r = await reportOf(night(1, { domains: { dom0: [['a', 'GOOD'], ['SERVER_JOB', 'GOOD']], vm1: [['a', 'WARN'], ['b', 'TEST_NA']] } }));
    expect(r.verdict).to.deep.equal({ word: 'PASS', headline: 'all 3 tests passed (1 skipped)' });
    expect(r.counts).to.deep.equal({ tests: 3, pass: 2, fail: 0, skip: 1 });
    expect(r.failures).to.deep.equal([]);
    expect(r.classes?.new).to.equal(2);
  });

  it('REGRESSED: the regression comes first, with the end of the log of the phase that failed', async () => {
    const n1 = night(1, { domains: { dom0: [['old', 'FAIL'], ['sieve', 'GOOD']], vm1: [['sieve', 'GOOD']] } });
    const n2 = night(2, { domains: { dom0: [['old', 'FAIL'], ['sieve', 'GOOD']], vm1: [['sieve', 'FAIL', 'run_command exited with status 1']] } });
    writeLog(n2, 'domains/vm1/sieve/debug/build.log', 'cc -o sieve sieve.c\n');
    writeLog(n2, 'domains/vm1/sieve/debug/run.log', Array.from({ length: 100 }, (_, i) => `line ${i + 1}`).join('\n') + '\n');
    const r = await reportOf(n1, n2);
    expect(r.verdict).to.deep.equal({ word: 'REGRESSED', headline: '1 regression: vm1/sieve' });
    expect(r.failures.map((f) => [f.class, `${f.domain}/${f.name}`])).to.deep.equal([
      ['regression', 'vm1/sieve'],
      ['never-passed', 'dom0/old'],
    ]);
    const first = r.failures[0]!;
    expect(first.detail).to.equal(`REGR. vs. night ${n1.night} (GOOD) (passed in domain dom0 this night)`);
    expect(first.excerpt?.file).to.equal(join(n2.dir, 'domains/vm1/sieve/debug/run.log'));
    expect(first.excerpt?.cut).to.equal(true);
    const lines = first.excerpt!.text.split('\n');
    expect(lines).to.have.length(40);
    expect([lines[0], lines[39]]).to.deep.equal(['line 61', 'line 100']);
  });

  it('BROKEN when a step of the night itself failed: that step first, with its log', async () => {
    const n = night(1, { domains: { dom0: [] } }, (r) => {
      r.status = 'FAIL';
      r.steps.push({ name: 'build.xen', status: 'FAIL', reason: 'make -j2 dist (exited with status 2 after 3 s)', started: r.started, finished: r.started, durationMs: 3000 });
    });
    writeLog(n, 'steps/build.xen.log', '$ make -j2 dist\nxen/arch/x86/setup.c:42: error: expected ; before }\nmake: *** [dist] Error 2\n');
    const r = await reportOf(n);
    expect(r.verdict.word).to.equal('BROKEN');
    expect(r.verdict.headline).to.equal('the night stopped at build.xen (FAIL): make -j2 dist (exited with status 2 after 3 s)');
    expect(r.failures[0]).to.include({ kind: 'step', name: 'build.xen' });
    expect(r.failures[0]?.excerpt?.text).to.include('setup.c:42: error');
  });

  it('REGRESSED when a domain that ran its tests the night before did not start tonight', async () => {
    const n1 = night(1, { domains: { dom0: [['a', 'GOOD']], vm2: [['a', 'GOOD']] } });
    const n2 = night(2, { domains: { dom0: [['a', 'GOOD']], vm2: [] } }, (r) => {
      const vm2 = r.domains[1]!;
      vm2.status = 'ERROR';
      vm2.reason = 'did not start: libxl: error: cannot make domain: -6';
    });
    writeLog(n2, 'steps/domains.start.log', '$ xl create -f /etc/xen/vm2.cfg\nlibxl: error: cannot make domain: -6\n');
    const r = await reportOf(n1, n2);
    expect(r.verdict).to.deep.equal({ word: 'REGRESSED', headline: 'vm2 ran its tests the night before, not tonight' });
    expect(r.failures[0]).to.include({ kind: 'domain', name: 'vm2', status: 'ERROR' });
    expect(r.failures[0]?.excerpt?.text).to.include('cannot make domain');
    expect(r.gone.map((g) => `${g.domain}/${g.name}: ${g.detail}`)).to.deep.equal([`vm2/a: was GOOD in night ${n1.night}, not run in this one (domain vm2: ERROR)`]);
  });

  it('FAILING when only known failures fail; INCOMPLETE while the night has no outcome', async () => {
    const n1 = night(1, { domains: { dom0: [['t', 'GOOD']] } });
    const n2 = night(2, { domains: { dom0: [['t', 'FAIL']] } });
    const n3 = night(3, { domains: { dom0: [['t', 'FAIL']] } });
    const r = await reportOf(n1, n2, n3);
    expect(r.verdict).to.deep.equal({ word: 'FAILING', headline: 'no regressions; 1 known failure' });
    expect(r.failures.map((f) => f.class)).to.deep.equal(['still-failing']);
    const n4 = night(4, { domains: { dom0: [['t', 'GOOD']] } }, (x) => {
      x.status = null;
      x.finished = null;
    });
    expect((await reportOf(n4)).verdict.word).to.equal('INCOMPLETE');
  });

  it('without a database: every failing test listed, and the report says it was not compared', () => {
    const n = night(1, { domains: { dom0: [['t', 'FAIL'], ['u', 'GOOD']] } });
    const r = buildReport({ record: n, comparison: null, notCompared: 'cannot open /x/results.db' });
    expect(r.verdict).to.deep.equal({ word: 'FAILING', headline: 'no regressions; 1 failing test (not compared with earlier nights)' });
    expect(r.failures.map((f) => f.name)).to.deep.equal(['t']);
    const text = renderReportText(r);
    expect(text).to.include('not compared with earlier nights: cannot open /x/results.db');
    expect(renderReportHtml(r)).to.include('id="not-compared"');
  });

  it("never reads a log outside the domain's results, whatever subdir the domain's own log names", async () => {
    const secret = join(root, 'secret');
    mkdirSync(secret);
    writeFileSync(join(secret, 'run.log'), 'dom0 secret\n');
    const n = night(1, { domains: { vm1: [{ name: 'escape', status: 'FAIL', subdir: '../../../../secret/..' }, { name: 'linked', status: 'FAIL', subdir: 'linked' }] } });
    // The domain's results hold a link to dom0's files.
    mkdirSync(join(n.dir, 'domains/vm1/linked'), { recursive: true });
    symlinkSync(secret, join(n.dir, 'domains/vm1/linked/debug'));
    const r = buildReport({ record: n, comparison: null });
    expect(r.failures.map((f) => [f.name, f.excerpt])).to.deep.equal([
      ['escape', null],
      ['linked', null],
    ]);
  });

  it('reads only the end of a huge log, and shows control characters as U+FFFD', function () {
    this.timeout(10_000);
    const file = join(root, 'big.log');
    const fd = openSync(file, 'w');
    // 1 GiB, nearly all of it a hole: what matters is that only the end is read.
    writeSync(fd, 'the beginning\n', 0);
    writeSync(fd, 'almost done\n\u001b[31mred\u001b[0m\rprogress\u0000\nthe end\n', 1024 ** 3);
    closeSync(fd);
    const started = Date.now();
    const e = tailOf(file, 3)!;
    expect(Date.now() - started).to.be.lessThan(500);
    expect(e.text).to.equal('\uFFFD[31mred\uFFFD[0m\nprogress\uFFFD\nthe end');
    expect(e.cut).to.equal(true);
  });

  it("the page and the summary show a domain's markup as text", async () => {
    const n1 = night(1, { domains: { vm1: [['t', 'GOOD']] } });
    const n2 = night(2, { domains: { vm1: [['t', 'FAIL', '<script>alert(1)</script> & "quotes"']] } });
    writeLog(n2, 'domains/vm1/t/debug/run.log', '<img src=x onerror=alert(2)>\n');
    for (const x of [n1, n2]) await db.ingest(x);
    const comparison = await compareNight(db);
    const report = makeReport(n2, { comparison, history: await db.nightHistory(comparison.night, 30) }, '/r/report.html');
    expect(report.html).to.not.include('<script>alert').and.not.include('<img src=x');
    expect(report.html).to.include('&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;').and.include('&lt;img src=x onerror=alert(2)&gt;');
    expect(report.html.match(/<script/g)).to.equal(null);
    expect(report.text.split('\n')[0]).to.equal(`xentest xenhost night ${n2.night}: REGRESSED: 1 regression: vm1/t`);
    expect(report.text).to.include('      <script>alert(1)</script> & "quotes"').and.include('report: /r/report.html');
  });
});
