/** What every step of a night can see: the control file, the machine, the journal, the last good build. */
import { existsSync, readFileSync } from 'node:fs';
import type { ControlFile } from '../../shared/controlfile/model.js';
import { writeFileAtomic } from '../../shared/atomic.js';
import type { MachinePaths, StateFiles } from '../machine.js';
import type { XenIdentity } from '../xen/identity.js';
import type { Journal } from './journal.js';

export interface Night {
  readonly id: string;
  readonly dir: string;
  readonly control: ControlFile;
  readonly paths: MachinePaths;
  readonly files: StateFiles;
  readonly journal: Journal;
  /** Environment for the commands the night runs (XENTEST_JOBS set). */
  readonly env: NodeJS.ProcessEnv;
  readonly lastGood: LastGood | undefined;
  say(line: string): void;
}

/** The build the machine last booted and verified: tonight's baseline and the boot loader's fallback. */
export interface LastGood {
  night: string;
  at: string;
  /** Source identities ("sha256:...", "git:..."), to tell an unchanged tree. */
  trees: { xen: string; linux?: string };
  xen: XenIdentity;
  image: string;
  /** The boot entry (grub-set-default form). */
  entry: string;
}

export function readLastGood(path: string): LastGood | undefined {
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, 'utf8')) as LastGood;
}

export function writeLastGood(path: string, lastGood: LastGood): void {
  writeFileAtomic(path, JSON.stringify(lastGood, null, 2) + '\n');
}

/** The build and install steps of each tree, in order. */
export function buildStepNames(withLinux: boolean): string[] {
  return ['build.xen', 'install.xen', ...(withLinux ? ['build.linux', 'install.linux'] : [])];
}

/**
 * After the boot (or at once, for an unchanged tree that is tested again): the
 * domains, with the control file's profilers running from before the dispatch
 * until every domain has finished (so they see the whole test, not its cleanup).
 */
export const DOMAIN_STEP_NAMES = ['profilers.start', 'domains.dispatch', 'domains.start', 'domains.wait', 'profilers.stop', 'domains.collect'];

/**
 * Once the night's outcome is known, whatever it is (a failed build needs a
 * report most): its results go into the results database, and the morning
 * report is written. They are about the night, not part of it: they do not
 * change its outcome, and the night's records leave them out.
 */
export const RESULTS_STEP_NAMES = ['results.store', 'results.report'];

export function nightStepNames(withLinux: boolean): string[] {
  return ['fetch', ...buildStepNames(withLinux), 'bootloader', 'reboot', ...DOMAIN_STEP_NAMES, ...RESULTS_STEP_NAMES];
}
