/**
 * One test of a domain, as one step of the runner (the paper's xenruntests
 * loop body): fetch source_url, put it in the tempdir, cd to test_dir, run
 * build_command, install_command and run_command, collect log_dir, write the
 * test's keyval, and say GOOD, FAIL or ERROR.
 *
 * Where the tree goes, and what test_dir means (the paper: "test_dir tells
 * Xentest the name of the directory that will be created when it extracts
 * the tarball"; all directories are relative to the domain's tempdir):
 *
 *  - a tarball is unpacked (safely, by fetchTree) into a staging directory
 *    inside the tempdir, then each of its top-level entries is moved into
 *    the tempdir, replacing an entry of the same name: the tempdir ends up as
 *    `tar -xf` in it would leave it. The test runs in tempdir/test_dir, so a
 *    run_command like the paper's `./runltp > ../logs/ltp/out` writes to
 *    tempdir/logs/ltp, the log_dir it names.
 *  - a git repository or a directory has no top directory of its own: it is
 *    put at tempdir/test_dir (which therefore cannot be "." for them).
 *
 * Status: ERROR when the test could not be fetched, placed, built or
 * installed (the suite's problem or the machine's, not a result); GOOD or
 * FAIL from run_command's exit status and what the test is expected to do
 * in this domain (see expectedOutcome).
 */
import { fileURLToPath } from 'node:url';
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { DomainSpec, DomainTest } from '../../shared/controlfile/model.js';
import { fetchTree, FetchError } from '../../shared/fetch/index.js';
import { describeResult, formatDuration, groupHasLiveMembers, lastOutputLine, runCommand, type CmdResult } from '../../shared/process/run.js';
import type { JobStatus } from '../../shared/statuslog/entry.js';
import { formatKeyval } from '../../shared/statuslog/keyval.js';
import { processStartTime } from '../../shared/process/procstat.js';
import type { Step, StepContext, StepResult } from '../pipeline/runner.js';
import { collectLogDir } from './collect-logs.js';
import { isUnprivileged, type Privilege } from './privilege.js';
import type { DomainArea } from './shared-area.js';

/** Under the tempdir: downloads and staging, apart from the trees the tests see. */
export const WORK_DIR_NAME = '.xentest';

export interface DomainRun {
  readonly hostname: string;
  readonly domain: DomainSpec;
  readonly area: DomainArea;
  readonly privilege: Privilege;
  readonly env: NodeJS.ProcessEnv;
  readonly bootId: string;
}

export type Expectation = 'pass' | 'fail';

/** A test marked `unprivileged = fail` must fail in an unprivileged domain; everything else must pass. */
export function expectedOutcome(test: DomainTest['test'], privilege: Privilege): Expectation {
  return test.unprivileged === 'fail' && isUnprivileged(privilege) ? 'fail' : 'pass';
}

/** The last line the command printed, shortened, or '' if it printed nothing. */
function shortLastLine(r: CmdResult): string {
  const line = lastOutputLine(r);
  return line.length > 200 ? line.slice(0, 200) + '…' : line;
}

function because(r: CmdResult): string {
  const last = shortLastLine(r);
  return `${describeResult(r)}${last ? `: ${last}` : ''}`;
}

/** GOOD or FAIL, and why, from run_command's result and what was expected of it. */
export function verdict(r: CmdResult, expected: Expectation): { status: JobStatus; reason: string } {
  const passed = r.exitStatus === 0 && !r.timedOut && !r.aborted;
  if (expected === 'pass') {
    return passed ? { status: 'GOOD', reason: 'completed successfully' } : { status: 'FAIL', reason: `run_command ${because(r)}` };
  }
  if (passed) return { status: 'FAIL', reason: 'should have failed in an unprivileged domain: run_command exited with status 0' };
  // A hang is not the refusal the test looks for.
  if (r.timedOut) return { status: 'FAIL', reason: `run_command ${because(r)} (it was expected to fail, not to hang)` };
  return { status: 'GOOD', reason: `failed as expected in an unprivileged domain: ${because(r)}` };
}

/** A directory name for a test's results (section names may hold anything). */
export function resultName(testName: string): string {
  const safe = testName.replace(/[^A-Za-z0-9._+-]/g, '_');
  return safe === '' || safe === '.' || safe === '..' || safe.startsWith('.') ? `_${safe}` : safe;
}

/** Step names: the results directory names, unique (a test named twice gets .2, .3, ...). */
export function stepNames(tests: readonly DomainTest[]): string[] {
  const seen = new Map<string, number>();
  return tests.map((t) => {
    const base = resultName(t.test.name);
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return n === 1 ? base : `${base}.${n}`;
  });
}

class TestError extends Error {}

/** `position` is "2 of 5", for the progress lines. */
export function testStep(t: DomainTest, name: string, position: string, run: DomainRun): Step {
  return {
    name,
    // Its results are results/<name>/: autotest's parser finds the test's keyval through this.
    subdir: name,
    run: (ctx) => runTest(t, name, position, run, ctx),
  };
}

async function runTest(t: DomainTest, name: string, position: string, d: DomainRun, ctx: StepContext): Promise<StepResult> {
  const test = t.test;
  const { area } = d;
  const resultDir = area.path('results', name);
  const debugDir = join(resultDir, 'debug');
  area.mkdir(debugDir);
  const runnerLog = join(debugDir, 'runner.log');
  const record = (line: string): void => {
    area.op(`append ${runnerLog}`, () => fs.appendFileSync(runnerLog, `${new Date().toISOString()} ${line}\n`));
  };
  /** For the person watching, and for the test's runner.log. */
  const note = (line: string): void => {
    ctx.log(line);
    record(line);
  };
  const tempdir = d.domain.tempdir.value;
  const expected = expectedOutcome(test, d.privilege);
  const started = Date.now();
  const seconds: Record<string, number> = {};
  const commands: Record<string, CmdResult> = {};
  ctx.log(`test ${position}: ${test.name} (${t.key}, attempt ${ctx.record.attempts}), expected to ${expected}`);
  record(`test ${position}: ${test.name} (${t.key}, attempt ${ctx.record.attempts}): ${d.privilege.why}; expected to ${expected}`);

  const runPhase = async (phase: 'build' | 'install' | 'run', command: string, cwd: string): Promise<CmdResult> => {
    const logFile = join(debugDir, `${phase}.log`);
    area.mkdir(debugDir);
    note(`${phase}: ${command}`);
    let pgid: number | undefined;
    const r = await runCommand(command, {
      cwd,
      env: { ...d.env, PATH: ownCommandsFirst(tempdir, d.env.PATH), XENTEST_TEST: test.name, XENTEST_TEMPDIR: tempdir, XENTEST_RESULTS: resultDir, XENTEST_HOSTNAME: d.hostname },
      timeoutMs: test.timeoutSeconds * 1000,
      logFile,
      onSpawn: (pid) => {
        pgid = pid;
        // Recorded before anything else happens, so a runner killed now kills this group when it starts again.
        ctx.record.processGroups.push({ pgid: pid, boot: d.bootId, start: processStartTime(pid) ?? '' });
        ctx.saveOutputs({});
      },
    });
    // A group with nothing left in it is forgotten; one whose background processes outlived the command is kept, for the next run to kill.
    if (pgid !== undefined && !groupHasLiveMembers(pgid)) ctx.record.processGroups = ctx.record.processGroups.filter((g) => g.pgid !== pgid);
    seconds[phase] = r.durationMs / 1000;
    commands[phase] = r;
    note(`${phase}: ${describeResult(r)} (log ${logFile})`);
    return r;
  };

  let result: { status: JobStatus; reason: string };
  let identity = '';
  let logs = { summary: 'log_dir not set', files: 0 };
  try {
    const t0 = Date.now();
    const place = await fetchAndPlace(test, name, tempdir, note).catch((e: unknown) => {
      // The tempdir is the domain's own disk: a full or read-only one is this test's ERROR, not the runner's crash.
      if (typeof (e as NodeJS.ErrnoException | null)?.code === 'string' && !(e instanceof FetchError)) {
        throw new TestError(`setting up the test in ${tempdir}: ${(e as Error).message}`);
      }
      throw e;
    });
    identity = place.identity;
    seconds.fetch = (Date.now() - t0) / 1000;
    ctx.checkpoint('fetched');
    for (const phase of ['build', 'install'] as const) {
      const command = (phase === 'build' ? test.buildCommand : test.installCommand)?.value;
      if (command === undefined) continue;
      const r = await runPhase(phase, command, place.cwd);
      if (r.exitStatus !== 0 || r.timedOut || r.aborted) throw new TestError(`${phase}_command ${because(r)}`);
    }
    ctx.checkpoint('running');
    const r = await runPhase('run', test.runCommand.value, place.cwd);
    result = verdict(r, expected);
  } catch (e) {
    if (e instanceof TestError) result = { status: 'ERROR', reason: e.message };
    else if (e instanceof FetchError) result = { status: 'ERROR', reason: `fetch: ${e.message} (${e.hint})` };
    else throw e;
  }

  if (test.logDir) {
    logs = collectLogDir(tempdir, test.logDir.value, join(resultDir, 'logs'), area);
    note(logs.summary);
  }
  const run = commands.run;
  const keyval: Array<[string, string | number]> = [
    ['domain', d.hostname],
    ['domain_section', d.domain.section],
    ['test', test.name],
    ['test_key', t.key],
    ['privileged', d.privilege.kind === 'unprivileged' ? 'no' : d.privilege.kind === 'privileged' ? 'yes' : 'unknown'],
    ['expected', expected],
    ['status', result.status],
    ['reason', result.reason],
    ['source', describeSource(test)],
    ['source_identity', identity],
    ['test_dir', join(tempdir, test.testDir.value)],
    ['timeout_seconds', test.timeoutSeconds],
    ['attempt', ctx.record.attempts],
    ['exit_status', run ? (run.exitStatus ?? `signal ${run.signal ?? 'unknown'}`) : 'not run'],
    ['timed_out', run ? (run.timedOut ? 1 : 0) : 0],
    ['logs_collected', logs.files],
    ['total_seconds', round((Date.now() - started) / 1000)],
    ...Object.entries(seconds).map(([k, v]): [string, number] => [`${k}_seconds`, round(v)]),
  ];
  // Replaced, not appended: a test entered again after an interruption has one keyval, this attempt's.
  area.writeAtomic(join(resultDir, 'keyval'), formatKeyval(keyval));
  // The step runner says the result on the terminal; this is for the file.
  record(`${result.status}: ${result.reason} (${formatDuration(Date.now() - started)})`);
  return {
    status: result.status,
    reason: result.reason,
    outputs: { expected, identity, seconds },
    fields: run && run.exitStatus !== null ? [['exit_status', String(run.exitStatus)]] : [],
  };
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

function describeSource(test: DomainTest['test']): string {
  const s = test.source?.value;
  if (!s) return 'installed';
  return s.kind === 'directory' ? s.path : s.url;
}

/** Fetch the test's source and put it where test_dir says (see the header); returns the directory to run in. */
async function fetchAndPlace(
  test: DomainTest['test'],
  name: string,
  tempdir: string,
  note: (line: string) => void,
): Promise<{ cwd: string; identity: string }> {
  if (!test.source) {
    // A test of what the domain has installed: nothing to fetch, it runs in test_dir (made if missing).
    const cwd = join(tempdir, test.testDir.value);
    fs.mkdirSync(cwd, { recursive: true });
    note(`nothing to fetch: runs installed tools in ${cwd}`);
    return { cwd, identity: `installed: ${test.runCommand.value}` };
  }
  const source = test.source.value;
  const work = join(tempdir, WORK_DIR_NAME);
  const options = { cacheDir: join(work, 'cache'), log: note };
  const testDir = test.testDir.value;
  fs.mkdirSync(work, { recursive: true });
  let identity: string;
  if (source.kind === 'tarball') {
    const staging = join(work, 'unpack', name);
    const got = await fetchTree(source, staging, options);
    identity = got.identity;
    const created = fs.readdirSync(staging);
    for (const entry of created) {
      if (entry === WORK_DIR_NAME) throw new TestError(`the archive ${source.url} holds a top-level ${WORK_DIR_NAME}, which is the runner's own directory in the tempdir`);
      const target = join(tempdir, entry);
      fs.rmSync(target, { recursive: true, force: true });
      fs.renameSync(join(staging, entry), target);
    }
    fs.rmSync(staging, { recursive: true, force: true });
    note(`unpacked ${source.url} into ${tempdir}: ${created.join(', ') || 'nothing'}`);
    const cwd = join(tempdir, testDir);
    if (!isDirectory(cwd)) {
      throw new TestError(
        `test_dir ${testDir} is not a directory in ${tempdir} after unpacking ${source.url}, which created ${created.join(', ') || 'nothing'} (set test_dir to the directory the archive creates)`,
      );
    }
    return { cwd, identity };
  }
  if (testDir === '.') {
    throw new TestError(`test_dir = . would make the tempdir ${tempdir} itself the ${source.kind === 'git' ? 'checkout' : 'copy'}; name a directory for it`);
  }
  const cwd = join(tempdir, testDir);
  const got = await fetchTree(source, cwd, options);
  note(`${got.description} at ${cwd}`);
  return { cwd, identity: got.identity };
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** This installation's commands, by the names a test calls them (bin/xenfc.js as xenfc). */
const OWN_COMMANDS: ReadonlyArray<[string, string]> = [
  ['xentest', 'xentest.js'],
  ['xenfc', 'xenfc.js'],
];

/**
 * PATH for a test, with this installation's own commands first, whatever
 * PATH the runner was started with: a test section runs `xenfc` or
 * `xentest balloon` from the same xentest as the runner. They are links in
 * the runner's directory in the tempdir.
 */
function ownCommandsFirst(tempdir: string, path: string | undefined): string {
  const dir = join(tempdir, WORK_DIR_NAME, 'bin');
  fs.mkdirSync(dir, { recursive: true });
  const pkgBin = fileURLToPath(new URL('../../../bin/', import.meta.url));
  for (const [name, file] of OWN_COMMANDS) {
    const link = join(dir, name);
    const target = join(pkgBin, file);
    let current: string | null = null;
    try {
      current = fs.readlinkSync(link);
    } catch {
      current = null;
    }
    if (current !== target) {
      fs.rmSync(link, { force: true });
      fs.symlinkSync(target, link);
    }
  }
  return path ? `${dir}:${path}` : dir;
}
