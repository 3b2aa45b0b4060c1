/**
 * A night from start to end: `xentest build` starts one (or continues the one
 * in progress), `xentest resume` continues it at boot. Both take the lock, so
 * a scheduled, a manual and a resumed night never run at once.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { writeFileAtomic } from '../../shared/atomic.js';
import { loadControlFile, type ControlFile } from '../../shared/controlfile/model.js';
import { StatusLogWriter } from '../../shared/statuslog/writer.js';
import { acquireLock } from '../lock.js';
import { machineHostname, machinePaths, stateFiles, type MachinePaths, type StateFiles } from '../machine.js';
import { Journal } from './journal.js';
import { nightStepNames, readLastGood, RESULTS_STEP_NAMES, type Night } from './night.js';
import { StepRunner, type NightEnd, type Step } from './runner.js';
import { bootloaderStep } from './steps/bootloader.js';
import { buildStep, installStep } from './steps/build.js';
import { collectStep, dispatchStep, startDomainsStep, waitDomainsStep } from './steps/domains.js';
import { fetchStep } from './steps/fetch.js';
import { profilersLeftRunning, restartProfilers, startProfilersStep, stopProfilersStep } from './steps/profilers.js';
import { currentBootId, rebootStep } from './steps/reboot.js';
import { reportStep, storeResultsStep } from './steps/results.js';

export interface NightOptions {
  env?: NodeJS.ProcessEnv;
  say?: (line: string) => void;
}

export interface NightReport {
  night: string;
  dir: string;
  end: NightEnd;
  /** True when this run started the night (false: it continued one). */
  started: boolean;
}

function nightId(nights: string): string {
  const base = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  let id = base;
  for (let n = 2; existsSync(join(nights, id)); n++) id = `${base}-${n}`;
  return id;
}

/** The night is over: its outcome is known, and its results are stored and reported (a night begun before those steps existed has none). */
export function nightOver(journal: Journal): boolean {
  return journal.finished && journal.data.steps.every((s) => !RESULTS_STEP_NAMES.includes(s.name) || s.state === 'done');
}

/** The night in progress, if any: the current-night pointer names a night that is not over. */
export function nightInProgress(files: StateFiles): { id: string; dir: string; journal: Journal } | undefined {
  if (!existsSync(files.current)) return undefined;
  const id = readFileSync(files.current, 'utf8').trim();
  const dir = join(files.nights, id);
  const journalPath = join(dir, 'journal.json');
  if (!existsSync(journalPath)) return undefined;
  const journal = Journal.load(journalPath);
  return nightOver(journal) ? undefined : { id, dir, journal };
}

/** The CPUs this process may run on, at least 1 (sched_getaffinity: a build pinned to some CPUs gets that many jobs). */
function cpuCount(): number {
  return availableParallelism();
}

function createNight(control: ControlFile, sourcePath: string, paths: MachinePaths, files: StateFiles): { id: string; dir: string; journal: Journal } {
  mkdirSync(files.nights, { recursive: true });
  const id = nightId(files.nights);
  const dir = join(files.nights, id);
  mkdirSync(dir, { recursive: true });
  const controlCopy = join(dir, 'control.cfg');
  copyFileSync(sourcePath, controlCopy);
  const journal = Journal.create(
    join(dir, 'journal.json'),
    { night: id, machine: machineHostname(paths), controlFile: controlCopy, sourceControlFile: sourcePath, createdAt: new Date().toISOString() },
    nightStepNames(control.preferences.linuxTree !== undefined),
  );
  copyFileSync(sourcePath, files.control);
  writeFileAtomic(files.current, id + '\n');
  // From here on, a boot (planned or not) continues the night.
  writeFileAtomic(files.marker, id + '\n');
  return { id, dir, journal };
}

function stepsOf(night: Night): Step[] {
  const linux = night.control.preferences.linuxTree !== undefined;
  return [
    fetchStep(night),
    buildStep(night, 'xen'),
    installStep(night, 'xen'),
    ...(linux ? [buildStep(night, 'linux'), installStep(night, 'linux')] : []),
    bootloaderStep(night),
    rebootStep(night),
    startProfilersStep(night),
    dispatchStep(night),
    startDomainsStep(night),
    waitDomainsStep(night),
    stopProfilersStep(night),
    collectStep(night),
  ];
}

async function drive(
  found: { id: string; dir: string; journal: Journal },
  control: ControlFile,
  paths: MachinePaths,
  files: StateFiles,
  options: NightOptions,
): Promise<NightEnd> {
  const say = options.say ?? ((line: string) => process.stdout.write(line + '\n'));
  found.journal.ensureSteps(nightStepNames(control.preferences.linuxTree !== undefined));
  const env = { ...(options.env ?? process.env), XENTEST_JOBS: String(cpuCount()) };
  const night: Night = {
    id: found.id,
    dir: found.dir,
    control,
    paths,
    files,
    journal: found.journal,
    env,
    lastGood: readLastGood(files.lastGood),
    say,
  };
  const statusLogPath = join(found.dir, 'status.log');
  const statusLog = new StatusLogWriter(statusLogPath);
  try {
    const io = { journal: found.journal, statusLog, statusLogPath, stepLogDir: join(found.dir, 'steps'), env, bootId: currentBootId(paths.bootIdFile), say };
    const runner = new StepRunner(io, stepsOf(night));
    // The night continues after a reboot or a crash: profilers that no longer run start again first.
    await restartProfilers(night);
    const end = await runner.run();
    // A failed step ended the night before profilers.stop: they must not outlive it.
    if (end.kind === 'finished' && profilersLeftRunning(found.journal)) await new StepRunner(io, [stopProfilersStep(night)]).run();
    if (end.kind === 'finished') {
      // The outcome is the night's steps' alone; what storing and reporting it does cannot change it.
      if (!found.journal.finished) {
        found.journal.data.outcome = { status: end.status, reason: end.reason, finishedAt: new Date().toISOString() };
        found.journal.save();
      }
      await new StepRunner(io, [storeResultsStep(night), reportStep(night)], { continueAfterFailure: true }).run();
      rmSync(files.marker, { force: true });
      rmSync(files.current, { force: true });
    }
    return end;
  } finally {
    statusLog.close();
  }
}

/** `xentest build FILE`: start a night, or continue the one in progress. */
export async function buildNight(controlPath: string, options: NightOptions = {}): Promise<NightReport> {
  const env = options.env ?? process.env;
  const paths = machinePaths(env);
  const files = stateFiles(paths.stateDir);
  const control = loadControlFile(controlPath);
  mkdirSync(paths.stateDir, { recursive: true });
  const lock = acquireLock(files.lock, `xentest build ${controlPath}`);
  try {
    const existing = nightInProgress(files);
    if (existing) {
      (options.say ?? console.log)(`continuing night ${existing.id}, which did not finish`);
      const nightControl = loadControlFile(existing.journal.data.controlFile);
      return { night: existing.id, dir: existing.dir, end: await drive(existing, nightControl, paths, files, options), started: false };
    }
    const created = createNight(control, controlPath, paths, files);
    (options.say ?? console.log)(`night ${created.id}: ${controlPath}`);
    return { night: created.id, dir: created.dir, end: await drive(created, control, paths, files, options), started: true };
  } finally {
    lock.release();
  }
}

/** `xentest resume`: at boot, continue the night in progress; nothing to do if there is none. */
export async function resumeNight(options: NightOptions = {}): Promise<NightReport | undefined> {
  const env = options.env ?? process.env;
  const paths = machinePaths(env);
  const files = stateFiles(paths.stateDir);
  mkdirSync(paths.stateDir, { recursive: true });
  const lock = acquireLock(files.lock, 'xentest resume');
  try {
    const existing = nightInProgress(files);
    if (!existing) {
      rmSync(files.marker, { force: true });
      return undefined;
    }
    const control = loadControlFile(existing.journal.data.controlFile);
    return { night: existing.id, dir: existing.dir, end: await drive(existing, control, paths, files, options), started: false };
  } finally {
    lock.release();
  }
}
