/**
 * `xentest export`: its usage mistakes (exit 64, a hint, no stack trace), its
 * output to stdout or a file, the Xen tree's name and URL from the night's
 * control.cfg, a night it cannot read (exit 1). The night is read by an
 * injected loader here; the last test reads a real night (the demo's) with
 * agent/results/load.ts when that is built.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { XMLValidator } from 'fast-xml-parser';
import { exportCommand, type NightLoader } from '../agent/cli/export.js';
import { UsageError } from '../agent/cli/usage.js';
import type { KcidbData } from '../agent/results/export/kcidb.js';
import type { NightRecord } from '../agent/results/record.js';
import { hasStackTrace, REPO_ROOT, runXentest, XENTEST_BIN } from './support/cli.js';

const NIGHT: NightRecord = {
  machine: 'xenhost1',
  night: '20260101T020000Z',
  dir: '/nights/20260101T020000Z',
  started: '2026-01-01T02:00:00.000Z',
  finished: '2026-01-01T03:00:00.000Z',
  status: 'GOOD',
  reason: '',
  build: { xenTree: `git:${'e'.repeat(40)}`, linuxTree: null, xenVersion: '4.19', xenBuildId: null, kernel: '6.1.0' },
  steps: [{ name: 'fetch', status: 'GOOD', reason: '', started: '2026-01-01T02:00:00.000Z', finished: '2026-01-01T02:00:05.000Z', durationMs: 5000 }],
  domains: [
    {
      name: 'vm1',
      status: 'GOOD',
      reason: '',
      tests: [{ name: 'ltp', status: 'FAIL', reason: 'sem01 failed', subdir: 'ltp', kernel: { base: '6.1.0', patches: [], hash: 'x' }, started: 1767232800, finished: 1767232900, keyval: {}, iterations: [] }],
    },
  ],
};

/** Run exportCommand with the given loader, capturing what it writes. */
async function exportWith(argv: string[], load: NightLoader): Promise<{ status: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const realOut = process.stdout.write.bind(process.stdout);
  const realErr = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => (err.push(String(s)), true)) as typeof process.stderr.write;
  try {
    const status = await exportCommand(argv, { load });
    return { status, stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = realOut;
    process.stderr.write = realErr;
  }
}

describe('xentest export', function () {
  this.timeout(30_000);
  let root: string;
  let nightDir: string;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'xentest-export-'));
    nightDir = join(root, 'nights', '20260101T020000Z');
    mkdirSync(nightDir, { recursive: true });
    writeFileSync(join(nightDir, 'journal.json'), '{}\n');
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('is listed by xentest help', () => {
    const r = runXentest(['help']);
    expect(r.status).to.equal(0);
    expect(r.stdout).to.match(/^ {2}xentest export --junit\|--kcidb \[--origin NAME\] \[--out FILE\] NIGHT_DIR +write a night's results as JUnit XML/m);
  });

  it('turns every command-line mistake into exit 64 and a hint, without a stack trace', () => {
    const notNight = join(root, 'nights');
    const cases: Array<[string[], RegExp]> = [
      [[nightDir], /exactly one of --junit and --kcidb/],
      [['--junit', '--kcidb', nightDir], /exactly one of --junit and --kcidb/],
      [['--junit', '--origin', 'lab', nightDir], /--origin is for --kcidb only/],
      [['--kcidb', '--origin', 'Lab-1', nightDir], /--origin "Lab-1" is not a KCIDB origin/],
      [['--kcidb'], /exactly one night directory/],
      [['--kcidb', nightDir, nightDir], /exactly one night directory/],
      [['--kcidb', join(root, 'nowhere')], /is not a night's directory \(it has no journal\.json\)/],
      [['--kcidb', notNight], /is not a night's directory/],
      [['--junit', '--out', '', nightDir], /--out needs a file name/],
      [['--xml', nightDir], /Unknown option '--xml'/],
    ];
    for (const [args, message] of cases) {
      const r = runXentest(['export', ...args]);
      expect(r.status, args.join(' ')).to.equal(64);
      expect(r.stderr, args.join(' ')).to.match(message).and.match(/\n {2}hint: /);
      expect(hasStackTrace(r.stderr), r.stderr).to.equal(false);
      expect(r.stdout).to.equal('');
    }
  });

  it('writes JUnit XML to standard output', async () => {
    const r = await exportWith(['--junit', nightDir], () => NIGHT);
    expect(r.status).to.equal(0);
    expect(XMLValidator.validate(r.stdout)).to.equal(true);
    expect(r.stdout).to.include('<testcase name="ltp" classname="xentest.xenhost1.vm1" time="100.000">');
    expect(r.stderr).to.equal('');
  });

  it('writes KCIDB JSON to a file, with the tree named from the night\'s control.cfg', async () => {
    copyFileSync(join(REPO_ROOT, 'conf/example.cfg'), join(nightDir, 'control.cfg'));
    const out = join(root, 'kcidb.json');
    let loadedFrom = '';
    const r = await exportWith(['--kcidb', '--origin', 'lab_1', '--out', out, nightDir], async (dir) => {
      loadedFrom = dir;
      return NIGHT;
    });
    expect(r).to.deep.equal({ status: 0, stdout: '', stderr: '' });
    expect(loadedFrom).to.equal(nightDir);
    const data = JSON.parse(readFileSync(out, 'utf8')) as KcidbData;
    expect(data.checkouts[0]).to.deep.include({
      origin: 'lab_1',
      tree_name: 'xen-unstable',
      git_repository_url: 'https://xenbits.xen.org/git-http/xen.git',
      git_commit_hash: 'e'.repeat(40),
    });
    expect(data.checkouts[0]?.misc).to.include({ ref: 'staging' });
    expect(data.tests.map((t) => [t.path, t.status])).to.deep.equal([
      ['xen.vm1', 'PASS'],
      ['xen.vm1.ltp', 'FAIL'],
    ]);
    // Without a control file copy the checkout has no name; the default origin is xentest.
    rmSync(join(nightDir, 'control.cfg'));
    const again = await exportWith(['--kcidb', nightDir], () => NIGHT);
    const bare = JSON.parse(again.stdout) as KcidbData;
    expect(bare.checkouts[0]).to.not.have.property('tree_name');
    expect(bare.checkouts[0]?.origin).to.equal('xentest');
  });

  it('says so and exits 1 when the night cannot be read or the file cannot be written', async () => {
    const unreadable = await exportWith(['--junit', nightDir], () => {
      throw new SyntaxError('Unexpected token } in JSON at position 1');
    });
    expect(unreadable.status).to.equal(1);
    expect(unreadable.stderr).to.equal(`xentest: cannot read the night in ${nightDir}: Unexpected token } in JSON at position 1\n`);
    expect(unreadable.stdout).to.equal('');

    const out = join(root, 'missing', 'report.xml');
    const unwritable = await exportWith(['--junit', '--out', out, nightDir], () => NIGHT);
    expect(unwritable.status).to.equal(1);
    expect(unwritable.stderr).to.match(new RegExp(`^xentest: cannot write ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ENOENT`));
    expect(existsSync(out)).to.equal(false);
  });

  it('throws UsageError (not a crash) for a usage mistake when called directly', async () => {
    let caught: unknown;
    try {
      await exportCommand(['--junit'], { load: () => NIGHT });
    } catch (e) {
      caught = e;
    }
    expect(caught).to.be.instanceOf(UsageError);
  });

  it('exports a real night (the demo\'s), read by agent/results/load.ts', function () {
    const loader = fileURLToPath(new URL('../agent/results/load.js', import.meta.url));
    if (!existsSync(loader)) this.skip();
    this.timeout(180_000);
    const dir = join(root, 'demo');
    const demo = spawnSync(process.execPath, [XENTEST_BIN, 'demo', '--dir', dir], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 150_000 });
    expect(demo.status, demo.stdout + demo.stderr).to.equal(0);
    const night = /^results: (.+)$/m.exec(demo.stdout)?.[1] as string;
    const junit = runXentest(['export', '--junit', night]);
    expect(junit.status, junit.stderr).to.equal(0);
    expect(XMLValidator.validate(junit.stdout)).to.equal(true);
    // Each domain's status.log as TKO reads it: the job itself (SERVER_JOB) and the four tests.
    for (const d of ['simhost', 'vm1', 'vm2']) {
      expect(junit.stdout).to.include(`<testsuite name="${d}" tests="5" failures="0" errors="0" skipped="0"`);
      for (const t of ['SERVER_JOB', 'sieve', 'settime', 'xenfc', 'balloon']) expect(junit.stdout).to.include(`<testcase name="${t}" classname="xentest.simhost.${d}"`);
    }
    expect(junit.stdout).to.include('<testcase name="domain.vm2" classname="xentest.simhost"/>');
    const out = join(root, 'night.kcidb.json');
    const kcidb = runXentest(['export', '--kcidb', '--out', out, night]);
    expect(kcidb.status, kcidb.stderr).to.equal(0);
    const data = JSON.parse(readFileSync(out, 'utf8')) as KcidbData;
    const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;
    const validate = addFormats(new Ajv({ allErrors: true })).compile(JSON.parse(readFileSync(join(REPO_ROOT, 'test/fixtures/kcidb/kcidb-io.schema.v5.3.json'), 'utf8')) as object);
    expect(validate(data), JSON.stringify(validate.errors)).to.equal(true);
    expect(data.builds.map((b) => b.status)).to.deep.equal(['PASS']);
    const paths = data.tests.map((t) => t.path);
    expect(paths).to.include.members(['boot', 'xen.simhost', 'xen.vm1', 'xen.vm2']);
    expect(data.tests.filter((t) => t.path.startsWith('xen.vm1.')).map((t) => t.path)).to.deep.equal(['xen.vm1.SERVER_JOB', 'xen.vm1.sieve', 'xen.vm1.settime', 'xen.vm1.xenfc', 'xen.vm1.balloon']);
    expect(data.checkouts[0]).to.include({ origin: 'xentest' });
    expect(data.checkouts[0]?.misc?.xen_tree).to.match(/^sha256:[0-9a-f]{64}$/);
    expect(data.tests.every((t) => t.status === 'PASS')).to.equal(true);
  });
});
