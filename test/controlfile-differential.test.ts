/**
 * Differential tests: our control-file reader against Python's configparser.
 *
 * Every hand-written fixture in test/fixtures/configparser/ and a few hundred
 * seeded random files (test/support/configgen.ts) are read by the machine's
 * python3 (test/support/pyconfig.py, one process for all of them) and by our
 * reader. Where Python reads a file, our JSON view must be the same string;
 * where Python raises, we must raise the same exception class with the same
 * message, at the same line when Python knows the line.
 *
 * A generated file is named gen-<seed>.ini; generateControlFile(seed) rebuilds
 * it. Set XENTEST_KEEP_DIFF_DIR=1 to keep the temporary directory.
 *
 * The reference is Python 3.11 (Unicode 14); the failure report names the
 * python3 that ran. No network is needed; a missing python3 fails the suite.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../shared/controlfile/errors.js';
import { pythonView, pythonViewJson } from '../shared/controlfile/pyview.js';
import { readControlFile } from '../shared/controlfile/reader.js';
import { generateControlFile, type GeneratedFile } from './support/configgen.js';

// Compiled to dist/test/, so the repository is two levels up.
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURES = join(ROOT, 'test', 'fixtures', 'configparser');
const PY_SCRIPT = join(ROOT, 'test', 'support', 'pyconfig.py');
const CLI = join(ROOT, 'bin', 'xentest.js');

/** Seeds of the generated files: fixed, so that every run compares the same files. */
const GENERATED_SEEDS = Array.from({ length: 5000 }, (_, i) => i + 1);
const MIN_FIXTURES = 60;

const ERROR_TYPES = [
  'MissingSectionHeaderError',
  'ParsingError',
  'DuplicateSectionError',
  'DuplicateOptionError',
  'InterpolationMissingOptionError',
  'InterpolationSyntaxError',
  'InterpolationDepthError',
  'UnicodeDecodeError',
] as const;

type PyResult =
  | { ok: string }
  | { error: { type: string; message: string; lineno: number | null; unexpected?: boolean } };

type OurResult = { ok: string } | { error: { type: string; message: string; line: number } } | { crash: string };

interface Case {
  readonly path: string;
  /** What to call it in a report. */
  readonly label: string;
  readonly generated?: GeneratedFile;
  python?: PyResult;
}

/** `Python 3.11.x`: the reference is 3.11's configparser, on Unicode 14. Shown with every failure. */
let pythonVersion = 'python3';

function requirePython(): void {
  const version = spawnSync('python3', ['--version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) {
    throw new Error(
      'python3 is needed for the configparser differential tests and was not found or does not run ' +
        `(${version.error?.message ?? version.stderr}); install Python 3.11 and make it "python3" on PATH`,
    );
  }
  pythonVersion = (version.stdout || version.stderr).trim();
}

function runPython(paths: readonly string[], workDir: string): PyResult[] {
  const list = join(workDir, 'files.txt');
  writeFileSync(list, paths.join('\n') + '\n');
  const run = spawnSync('python3', [PY_SCRIPT, '--list', list], {
    encoding: 'utf8',
    maxBuffer: 512 * 1024 * 1024,
    env: { ...process.env, PYTHONIOENCODING: 'utf-8', PYTHONUTF8: '1' },
  });
  if (run.error || run.status !== 0) {
    throw new Error(`${PY_SCRIPT} failed (status ${run.status}): ${run.error?.message ?? run.stderr}`);
  }
  const lines = run.stdout.split('\n').filter((l) => l.length > 0);
  if (lines.length !== paths.length) {
    throw new Error(`${PY_SCRIPT} printed ${lines.length} results for ${paths.length} files`);
  }
  return lines.map((l) => JSON.parse(l) as PyResult);
}

function ours(path: string): OurResult {
  try {
    return { ok: pythonViewJson(pythonView(readControlFile(path))) };
  } catch (e) {
    if (e instanceof ConfigError) return { error: { type: e.type, message: e.message, line: e.line } };
    return { crash: e instanceof Error ? (e.stack ?? e.message) : String(e) };
  }
}

/** Undefined when we agree with Python, else why not. */
function disagreement(py: PyResult, us: OurResult): string | undefined {
  if ('crash' in us) return 'our reader crashed';
  if ('ok' in py) {
    if (!('ok' in us)) return 'Python reads the file, we raise';
    return us.ok === py.ok ? undefined : 'the views differ';
  }
  if (!('error' in us)) return `Python raises ${py.error.type}, we read the file`;
  if (us.error.type !== py.error.type) return 'different exception classes';
  if (us.error.message !== py.error.message) return 'different messages';
  if (py.error.lineno !== null && us.error.line !== py.error.lineno) return 'different lines';
  return undefined;
}

function report(failures: ReadonlyArray<{ c: Case; why: string; us: OurResult }>, total: number): string {
  const shown = failures.slice(0, 25).map(({ c, why, us }) => {
    const g = c.generated;
    const rebuild = g ? ` (generateControlFile(${g.seed}), hazards: ${g.hazards.join(', ') || 'none'})` : '';
    return `${c.label}${rebuild}: ${why}\n    python: ${JSON.stringify(c.python)}\n    ours:   ${JSON.stringify(us)}`;
  });
  const more = failures.length > shown.length ? `\n  ... and ${failures.length - shown.length} more` : '';
  return `${failures.length} of ${total} files read differently from ${pythonVersion}:\n  ${shown.join('\n  ')}${more}`;
}

function compareAll(cases: readonly Case[]): void {
  const failures: Array<{ c: Case; why: string; us: OurResult }> = [];
  for (const c of cases) {
    const us = ours(c.path);
    const why = disagreement(c.python as PyResult, us);
    if (why) failures.push({ c, why, us });
  }
  if (failures.length > 0) expect.fail(report(failures, cases.length));
}

function pyType(c: Case): string {
  const p = c.python as PyResult;
  return 'ok' in p ? 'ok' : p.error.type;
}

describe('control files: our reader against Python configparser', function () {
  // Some 5000 files through Python and through us take about five seconds; leave room for a loaded machine.
  this.timeout(120_000);

  let workDir: string;
  const fixtures: Case[] = [];
  const generated: Case[] = [];

  before(function () {
    requirePython();
    workDir = mkdtempSync(join(tmpdir(), 'xentest-configparser-'));
    for (const name of readdirSync(FIXTURES).sort()) {
      if (!name.endsWith('.ini')) continue;
      fixtures.push({ path: join(FIXTURES, name), label: `fixtures/configparser/${name}` });
    }
    const genDir = join(workDir, 'generated');
    mkdirSync(genDir);
    for (const seed of GENERATED_SEEDS) {
      const file = generateControlFile(seed);
      const path = join(genDir, file.name);
      writeFileSync(path, file.bytes);
      generated.push({ path, label: path, generated: file });
    }
    const all = [...fixtures, ...generated];
    const results = runPython(all.map((c) => c.path), workDir);
    all.forEach((c, i) => (c.python = results[i]));
  });

  after(function () {
    if (workDir && !process.env['XENTEST_KEEP_DIFF_DIR']) rmSync(workDir, { recursive: true, force: true });
    else if (workDir) console.log(`    kept ${workDir}`);
  });

  it(`has at least ${MIN_FIXTURES} hand-written fixtures, reaching every outcome Python has`, function () {
    expect(fixtures.length).to.be.at.least(MIN_FIXTURES);
    const seen = new Set(fixtures.map(pyType));
    for (const t of ['ok', ...ERROR_TYPES]) expect([...seen], `no fixture where Python gives ${t}`).to.include(t);
    const unexpected = fixtures.filter((c) => {
      const p = c.python as PyResult;
      return 'error' in p && p.error.unexpected;
    });
    expect(unexpected.map((c) => c.label), 'Python failed outside configparser').to.deep.equal([]);
  });

  it('reads every hand-written fixture exactly as Python does', function () {
    compareAll(fixtures);
  });

  it('generates a useful mix: at least 40% read cleanly, and every error type occurs', function () {
    const counts = new Map<string, number>();
    for (const c of generated) counts.set(pyType(c), (counts.get(pyType(c)) ?? 0) + 1);
    const ok = counts.get('ok') ?? 0;
    const summary = JSON.stringify(Object.fromEntries(counts));
    expect(ok / generated.length, `share read cleanly: ${summary}`).to.be.at.least(0.4);
    for (const t of ERROR_TYPES) expect(counts.get(t) ?? 0, `no generated file gives ${t}: ${summary}`).to.be.above(0);
    expect(
      generated.filter((c) => c.generated?.big).length,
      'some generated files must span several 8192-byte chunks',
    ).to.be.above(0);
  });

  it(`reads ${GENERATED_SEEDS.length} generated files exactly as Python does`, function () {
    compareAll(generated);
  });

  it('the CLI (xentest config --json) prints the same JSON and exits 0, or 2 on an error', function () {
    // One file per outcome, the first fixture (in name order) that has it.
    const picks = ['ok', ...ERROR_TYPES].map((t) => {
      const c = fixtures.find((f) => pyType(f) === t);
      if (!c) throw new Error(`no fixture where Python gives ${t}`);
      return c;
    });
    for (const c of picks) {
      const run = spawnSync(process.execPath, [CLI, 'config', '--json', c.path], { encoding: 'utf8' });
      const py = c.python as PyResult;
      const where = `${c.label}: stdout ${JSON.stringify(run.stdout)}, stderr ${JSON.stringify(run.stderr)}`;
      if ('ok' in py) {
        expect(run.status, where).to.equal(0);
        expect(run.stdout, where).to.equal(py.ok + '\n');
      } else {
        expect(run.status, where).to.equal(2);
        expect(run.stdout.endsWith('\n'), where).to.equal(true);
        const got = JSON.parse(run.stdout) as { error: { type: string; message: string; file: string; line: number } };
        expect(Object.keys(got.error), where).to.deep.equal(['type', 'message', 'file', 'line']);
        expect(got.error.type, where).to.equal(py.error.type);
        expect(got.error.message, where).to.equal(py.error.message);
        expect(got.error.file, where).to.equal(c.path);
        if (py.error.lineno !== null) expect(got.error.line, where).to.equal(py.error.lineno);
      }
    }
  });
});
