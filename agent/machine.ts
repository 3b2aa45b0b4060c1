/**
 * Where things are on the machine the agent runs on. Everything the agent
 * touches outside its own code is below `root` ("/" on a real machine); the
 * simulated Xen host points XENTEST_ROOT at a directory of its own, so the
 * same code paths run in the tests.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export interface MachinePaths {
  readonly root: string;
  /** The agent's state: control file copy, marker, lock, journal, nights, caches. */
  readonly stateDir: string;
  readonly bootDir: string;
  readonly grubCfg: string;
  readonly grubEnv: string;
  /** Changes at every boot (Linux's /proc/sys/kernel/random/boot_id). */
  readonly bootIdFile: string;
}

export function machinePaths(env: NodeJS.ProcessEnv = process.env): MachinePaths {
  const root = env.XENTEST_ROOT || '/';
  return {
    root,
    stateDir: env.XENTEST_STATE_DIR || join(root, 'var/lib/xentest'),
    bootDir: join(root, 'boot'),
    grubCfg: join(root, 'boot/grub/grub.cfg'),
    grubEnv: join(root, 'boot/grub/grubenv'),
    bootIdFile: join(root, 'proc/sys/kernel/random/boot_id'),
  };
}

/** This machine's name, for its results: /etc/hostname (under the root), else the kernel's. */
export function machineHostname(paths: MachinePaths): string {
  try {
    const name = readFileSync(join(paths.root, 'etc/hostname'), 'utf8').split('\n')[0]?.trim();
    if (name) return name;
  } catch {
    // No /etc/hostname: the kernel's name is the machine's.
  }
  return hostname();
}

/** The files of the state directory. */
export interface StateFiles {
  readonly lock: string;
  /** "Start tests after boot" (the paper's /etc/xen_start_tests): a night is in progress; the resume unit runs when it exists. */
  readonly marker: string;
  /** The control file of the night in progress (the paper's /etc/xen/xentest.conf). */
  readonly control: string;
  /** Points at the night in progress. */
  readonly current: string;
  readonly lastGood: string;
  readonly nights: string;
  readonly cache: string;
  readonly work: string;
}

export function stateFiles(stateDir: string): StateFiles {
  return {
    lock: join(stateDir, 'lock'),
    marker: join(stateDir, 'start-tests-after-boot'),
    control: join(stateDir, 'control.cfg'),
    current: join(stateDir, 'current-night'),
    lastGood: join(stateDir, 'last-good.json'),
    nights: join(stateDir, 'nights'),
    cache: join(stateDir, 'cache'),
    work: join(stateDir, 'work'),
  };
}
