/**
 * Comparing a night with its history (agent/results/compare.ts): every class
 * on a hand-made history, --base, and the rules about what counts as a pass.
 * On SQLite, and on PostgreSQL when XENTEST_TEST_PG_URL is set.
 */
import { expect } from 'chai';
import { classify, compareNight, CompareError, verdictOf, type Comparison } from '../agent/results/compare.js';
import type { ResultsDb, TestFacts } from '../agent/results/db/store.js';
import type { NightRecord } from '../agent/results/record.js';
import { describeDriver, DRIVERS, nightId, nightRecord, type NightSpec } from './support/results-db.js';

/** Each test as "domain/name class [base night number]" for short expectations. */
function summary(c: Comparison): string[] {
  const day = (night: string | null | undefined): string => (night ? `n${Number(night.slice(6, 8))}` : '-');
  return c.tests.map((t) => `${t.domain}/${t.name} ${t.class} ${day(t.base?.night)}`);
}

describe('compare: verdicts and classes (no database)', () => {
  it('GOOD and WARN pass, TEST_NA is skipped, everything else fails', () => {
    expect(['GOOD', 'WARN', 'TEST_NA', 'FAIL', 'ERROR', 'ABORT', 'RUNNING', 'NOSTATUS', 'ALERT'].map(verdictOf)).to.deep.equal([
      'pass', 'pass', 'skip', 'fail', 'fail', 'fail', 'fail', 'fail', 'fail',
    ]);
  });

  it('decides flaky before regression, names the first evidence that applies, and takes no other domain as evidence', () => {
    const base: TestFacts = {
      domain: 'vm1', name: 't', result: 'fail', status: 'FAIL', reason: '', runs: 1, refNight: 'N1', refResult: 'pass', refStatus: 'GOOD',
      lastPassNight: 'N1', failingSinceNight: null, passedInDomain: null, passedOnRerunNight: null,
    };
    expect(classify(base, 'N2')).to.deep.equal({ class: 'regression', flaky: null });
    expect(classify({ ...base, passedInDomain: 'dom0' }, 'N2')).to.deep.equal({ class: 'regression', flaky: null });
    expect(classify({ ...base, passedInDomain: 'dom0', passedOnRerunNight: 'N0' }, 'N2').flaky).to.deep.equal({ kind: 'same-build', night: 'N0' });
    expect(classify({ ...base, result: 'mixed', passedOnRerunNight: 'N0' }, 'N2').flaky).to.deep.equal({ kind: 'rerun', night: 'N2' });
    expect(classify({ ...base, refResult: 'fail' }, 'N2').class).to.equal('still-failing');
    expect(classify({ ...base, refResult: 'mixed', lastPassNight: null }, 'N2').class).to.equal('never-passed');
    expect(classify({ ...base, refNight: null, refResult: null }, 'N2').class).to.equal('new');
    expect(classify({ ...base, result: 'skip' }, 'N2').class).to.equal('skipped');
    expect(classify({ ...base, result: 'pass', refResult: 'mixed' }, 'N2').class).to.equal('fixed');
  });
});

for (const driver of DRIVERS) {
  describeDriver(driver, 'compare', ({ fresh }) => {
    let db: ResultsDb;
    beforeEach(async () => {
      db = await (await fresh()).open();
    });
    afterEach(async () => {
      await db.close();
    });

    /** Ingests nights by number: history[0] is night 1, ... */
    async function history(...nights: Array<NightSpec | NightRecord>): Promise<void> {
      for (const [i, n] of nights.entries()) await db.ingest('night' in n ? n : nightRecord(i + 1, n));
    }

    it('regression, fixed, pass, new, gone, skipped: each test against the last night that ran it', async () => {
      await history(
        { domains: { dom0: [['breaks', 'GOOD'], ['mends', 'FAIL'], ['stays', 'GOOD'], ['leaves', 'GOOD'], ['na', 'GOOD']] } },
        {
          domains: {
            dom0: [['breaks', 'FAIL', 'exit status 1'], ['mends', 'GOOD'], ['stays', 'GOOD'], ['arrives', 'GOOD'], ['na', 'TEST_NA']],
          },
        },
      );
      const c = await compareNight(db);
      expect(c.night.night).to.equal(nightId(2));
      expect(summary(c)).to.deep.equal([
        'dom0/breaks regression n1',
        'dom0/mends fixed n1',
        'dom0/stays pass n1',
        'dom0/arrives new -',
        'dom0/na skipped n1',
      ]);
      const breaks = c.tests[0]!;
      expect(breaks).to.include({ status: 'FAIL', reason: 'exit status 1', lastPassNight: nightId(1) });
      expect(breaks.base).to.deep.equal({ night: nightId(1), status: 'GOOD' });
      expect(c.tests[1]!.base).to.deep.equal({ night: nightId(1), status: 'FAIL' });
      expect(c.gone).to.deep.equal([{ domain: 'dom0', name: 'leaves', night: nightId(1), status: 'GOOD', domainStatus: 'GOOD' }]);
      expect(c.counts).to.deep.equal({ regression: 1, flaky: 0, 'still-failing': 0, 'never-passed': 0, fixed: 1, new: 1, gone: 1, skipped: 1, pass: 1 });
    });

    it('still failing (since the first failure after its last pass) and never passed', async () => {
      await history(
        { domains: { dom0: [['broke', 'GOOD'], ['never', 'FAIL']] } },
        { domains: { dom0: [['broke', 'FAIL'], ['never', 'ERROR']] } },
        { domains: { dom0: [['broke', 'ABORT'], ['never', 'FAIL']] } },
        { domains: { dom0: [['broke', 'FAIL'], ['never', 'FAIL']] } },
      );
      const c = await compareNight(db);
      expect(summary(c)).to.deep.equal(['dom0/broke still-failing n3', 'dom0/never never-passed n3']);
      expect(c.tests[0]).to.include({ lastPassNight: nightId(1), failingSinceNight: nightId(2) });
      expect(c.tests[0]!.base).to.deep.equal({ night: nightId(3), status: 'ABORT' });
      expect(c.tests[1]).to.include({ lastPassNight: null, failingSinceNight: nightId(1) });
      // The night it broke, compared: a regression against night 1.
      expect(summary(await compareNight(db, { night: nightId(2) }))).to.deep.equal(['dom0/broke regression n1', 'dom0/never never-passed n1']);
    });

    it('compares within a machine and a domain only', async () => {
      await history(
        { machine: 'alpha', domains: { dom0: [['t', 'GOOD']], vm1: [['t', 'GOOD']] } },
        { machine: 'beta', domains: { dom0: [['t', 'FAIL']] } },
        { machine: 'alpha', domains: { dom0: [['t', 'GOOD']], vm2: [['t', 'FAIL']] } },
      );
      // beta's night 2 has no history of its own, though alpha ran the test the night before.
      expect(summary(await compareNight(db, { machine: 'beta' }))).to.deep.equal(['dom0/t new -']);
      // alpha's night 3: dom0 against alpha's night 1 (not beta's night 2); vm2 is new, not vm1's.
      const alpha = await compareNight(db, { machine: 'alpha' });
      // A test never run before is new, whatever other domains did.
      expect(summary(alpha)).to.deep.equal(['dom0/t pass n1', 'vm2/t new -']);
      expect(alpha.gone).to.deep.equal([{ domain: 'vm1', name: 't', night: nightId(1), status: 'GOOD', domainStatus: null }]);
    });

    it('flaky: a re-run passed, or the same build passed on another night; another domain passing it is only a note', async () => {
      await history(
        { build: 'sha256:A', domains: { dom0: [['rerun', 'GOOD'], ['retest', 'GOOD'], ['guest', 'GOOD']], vm1: [['guest', 'GOOD']] } },
        // vm1 did not run "guest" on build B: only another domain passed it there.
        { build: 'sha256:B', domains: { dom0: [['rerun', 'GOOD'], ['retest', 'GOOD'], ['guest', 'GOOD']], vm1: [] } },
        {
          // The same build as night 2: a retest of an unchanged tree.
          build: 'sha256:B',
          domains: {
            dom0: [['rerun', 'FAIL'], ['rerun', 'GOOD'], ['retest', 'FAIL'], ['guest', 'GOOD']],
            vm1: [['guest', 'FAIL']],
          },
        },
      );
      const c = await compareNight(db);
      expect(summary(c)).to.deep.equal(['dom0/rerun flaky n2', 'dom0/retest flaky n2', 'dom0/guest pass n2', 'vm1/guest regression n1']);
      expect(c.tests.map((t) => t.flaky)).to.deep.equal([{ kind: 'rerun', night: nightId(3) }, { kind: 'same-build', night: nightId(2) }, null, null]);
      expect(c.tests.map((t) => t.passedInDomain)).to.deep.equal([null, null, null, 'dom0']);
      expect(c.tests[0]).to.include({ runs: 2, status: 'FAIL' });
      // A mixed night is no pass as history: night 4 passes "rerun" again, which fixes it.
      await db.ingest(nightRecord(4, { domains: { dom0: [['rerun', 'GOOD']] } }));
      expect(summary(await compareNight(db))).to.deep.equal(['dom0/rerun fixed n3']);
    });

    it('a test whose own source changed is not flaky on the same build: it regressed', async () => {
      const t = (name: string, status: 'GOOD' | 'FAIL', source: string) => ({ name, status, keyval: { source_identity: source } });
      await history(
        { build: 'sha256:A', domains: { dom0: [t('suite', 'GOOD', 'sha256:v1'), t('same', 'GOOD', 'sha256:s1')] } },
        // The Xen tree is unchanged (a retest); the suite's tarball is not.
        { build: 'sha256:A', domains: { dom0: [t('suite', 'FAIL', 'sha256:v2'), t('same', 'FAIL', 'sha256:s1')] } },
      );
      const c = await compareNight(db);
      expect(summary(c)).to.deep.equal(['dom0/suite regression n1', 'dom0/same flaky n1']);
      expect(c.tests[1]?.flaky).to.deep.equal({ kind: 'same-build', night: nightId(1) });
    });

    it('without a Xen tree identity, no night is the same build as another', async () => {
      await history(
        { build: null, domains: { dom0: [['t', 'GOOD']] } },
        { build: null, domains: { dom0: [['t', 'FAIL']] } },
      );
      expect(summary(await compareNight(db))).to.deep.equal(['dom0/t regression n1']);
    });

    it('WARN is a pass; a skipped (TEST_NA) night is no history', async () => {
      await history(
        { domains: { dom0: [['warned', 'GOOD'], ['gap', 'GOOD'], ['expected', 'GOOD', 'failed as expected in an unprivileged domain']] } },
        { domains: { dom0: [['warned', 'WARN'], ['gap', 'TEST_NA'], ['expected', 'GOOD']] } },
        { domains: { dom0: [['warned', 'GOOD'], ['gap', 'FAIL'], ['expected', 'FAIL', 'passed in an unprivileged domain']] } },
      );
      expect(summary(await compareNight(db, { night: nightId(2) }))).to.deep.equal(['dom0/warned pass n1', 'dom0/gap skipped n1', 'dom0/expected pass n1']);
      // night 3: "gap" compared with night 1, the last that ran it.
      expect(summary(await compareNight(db))).to.deep.equal(['dom0/warned pass n2', 'dom0/gap regression n1', 'dom0/expected regression n2']);
    });

    it('orders nights by their start time, not by when they were ingested', async () => {
      await db.ingest(nightRecord(3, { domains: { dom0: [['t', 'FAIL']] } }));
      await db.ingest(nightRecord(1, { domains: { dom0: [['t', 'FAIL']] } }));
      await db.ingest(nightRecord(2, { domains: { dom0: [['t', 'GOOD']] } }));
      const c = await compareNight(db);
      expect(c.night.night).to.equal(nightId(3));
      expect(summary(c)).to.deep.equal(['dom0/t regression n2']);
      expect(summary(await compareNight(db, { night: nightId(2) }))).to.deep.equal(['dom0/t fixed n1']);
    });

    it('a re-ingested night changes the history the next nights are compared with', async () => {
      await history({ domains: { dom0: [['t', 'GOOD']] } }, { domains: { dom0: [['t', 'FAIL']] } });
      expect(summary(await compareNight(db))).to.deep.equal(['dom0/t regression n1']);
      await db.ingest(nightRecord(1, { domains: { dom0: [['t', 'FAIL']] } }));
      expect(summary(await compareNight(db))).to.deep.equal(['dom0/t never-passed n1']);
    });

    it('--base: every test against one night, and gone against that night', async () => {
      await history(
        { domains: { dom0: [['a', 'GOOD'], ['b', 'GOOD'], ['c', 'FAIL'], ['old', 'GOOD']] } },
        { domains: { dom0: [['a', 'FAIL'], ['b', 'GOOD'], ['c', 'FAIL']] } },
        { domains: { dom0: [['a', 'FAIL'], ['b', 'FAIL'], ['c', 'GOOD'], ['d', 'GOOD']] } },
      );
      const byHistory = await compareNight(db);
      expect(summary(byHistory)).to.deep.equal(['dom0/a still-failing n2', 'dom0/b regression n2', 'dom0/c fixed n2', 'dom0/d new -']);
      expect(byHistory.gone).to.deep.equal([]);
      expect(byHistory.goneRef?.night).to.equal(nightId(2));

      const vs1 = await compareNight(db, { base: nightId(1) });
      expect(vs1.base?.night).to.equal(nightId(1));
      expect(summary(vs1)).to.deep.equal(['dom0/a regression n1', 'dom0/b regression n1', 'dom0/c fixed n1', 'dom0/d new -']);
      expect(vs1.gone).to.deep.equal([{ domain: 'dom0', name: 'old', night: nightId(1), status: 'GOOD', domainStatus: 'GOOD' }]);

      // A base that comes after the night is allowed: "what changed from 3 to 2".
      expect(summary(await compareNight(db, { night: nightId(2), base: nightId(3) }))).to.deep.equal([
        'dom0/a still-failing n3',
        'dom0/b fixed n3',
        'dom0/c regression n3',
      ]);
    });

    it('says clearly when a night is not there, is on several machines, or is its own base', async () => {
      const fail = async (o: Parameters<typeof compareNight>[1]): Promise<CompareError> => {
        let error: unknown;
        await compareNight(db, o).catch((e: unknown) => (error = e));
        expect(error).to.be.instanceOf(CompareError);
        return error as CompareError;
      };
      let e = await fail({});
      expect(e.message).to.match(/has no nights$/);
      expect(e.hint).to.match(/xentest db ingest/);
      await history({ machine: 'alpha', domains: { dom0: [['t', 'GOOD']] } });
      await db.ingest(nightRecord(1, { machine: 'beta', domains: { dom0: [['t', 'GOOD']] } }));
      e = await fail({ night: '20990101T000000Z' });
      expect(e.message).to.match(/^no night 20990101T000000Z in the results database/);
      expect(e.hint).to.equal(`the newest nights: ${nightId(1)} (alpha), ${nightId(1)} (beta)`);
      e = await fail({ night: nightId(1) });
      expect(e.message).to.equal(`night ${nightId(1)} is in the results database for 2 machines: alpha, beta`);
      expect(e.hint).to.match(/--machine/);
      e = await fail({ night: nightId(1), machine: 'alpha', base: nightId(1) });
      expect(e.message).to.match(/is the night being compared/);
      e = await fail({ night: nightId(1), machine: 'alpha', base: '20250101T000000Z' });
      expect(e.message).to.match(/^no night 20250101T000000Z of machine alpha/);
    });
  });
}
