/**
 * Where everything of a simulated machine D lives, and the machine's view of
 * its own paths: a path the machine calls /boot/xen.gz is D/root/boot/xen.gz.
 */
import { join, resolve } from 'node:path';
import { readJson } from './fsutil.js';
import type { MachineConfig } from './types.js';

export interface SimLayout {
  dir: string;
  root: string;
  binDir: string;
  /** D/guest-bin: the commands a guest has of the simulation (xenstore-read), on every guest's PATH. */
  guestBinDir: string;
  stateDir: string;
  logDir: string;
  machine: string;
  running: string;
  faults: string;
  boots: string;
  bootCounter: string;
  /** In-progress boot records (D/state/booting/N.json), finished ones go to boots.jsonl. */
  booting: string;
  /** Processes of the machine a reboot or power cut must end (D/state/procs/PID.json). */
  procs: string;
  commands: string;
  bootDir: string;
  grubCfg: string;
  grubEnv: string;
  defaultGrub: string;
  xentestStateDir: string;
  xentestLock: string;
  xentestBin: string;
  bootIdFile: string;
  /** D/domains/<name>/root: each guest's filesystem (its runner's XENTEST_ROOT). */
  domainsDir: string;
  /** <root>/proc/xen/capabilities: control_d in dom0. */
  xenCapabilities: string;
}

export function simLayout(dir: string): SimLayout {
  const d = resolve(dir);
  const root = join(d, 'root');
  const state = join(d, 'state');
  const log = join(d, 'log');
  return {
    dir: d,
    root,
    binDir: join(d, 'bin'),
    guestBinDir: join(d, 'guest-bin'),
    stateDir: state,
    logDir: log,
    machine: join(state, 'machine.json'),
    running: join(state, 'running.json'),
    faults: join(state, 'faults.json'),
    boots: join(state, 'boots.jsonl'),
    bootCounter: join(state, 'boot-counter'),
    booting: join(state, 'booting'),
    procs: join(state, 'procs'),
    commands: join(log, 'commands.jsonl'),
    bootDir: join(root, 'boot'),
    grubCfg: join(root, 'boot/grub/grub.cfg'),
    grubEnv: join(root, 'boot/grub/grubenv'),
    defaultGrub: join(root, 'etc/default/grub'),
    xentestStateDir: join(root, 'var/lib/xentest'),
    xentestLock: join(root, 'var/lib/xentest/lock'),
    xentestBin: join(root, 'usr/local/bin/xentest'),
    bootIdFile: join(root, 'proc/sys/kernel/random/boot_id'),
    domainsDir: join(d, 'domains'),
    xenCapabilities: join(root, 'proc/xen/capabilities'),
  };
}

/** A file name for a domain name (xl accepts names no file can have). */
export function fileSafeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._+-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).replace(/^\.\.?$/, (m) => m.replace(/\./g, '%2e'));
}

/** A guest's filesystem (its runner's XENTEST_ROOT): D/domains/<name>/root. */
export function domainRoot(layout: SimLayout, name: string): string {
  return join(layout.domainsDir, fileSafeName(name), 'root');
}

/** The machine's absolute path `p` on the host (a path already under the root is left alone). */
export function hostPath(layout: SimLayout, p: string): string {
  if (p === layout.root || p.startsWith(layout.root + '/')) return p;
  if (!p.startsWith('/')) return p;
  return join(layout.root, p);
}

/** D from SIMHOST_DIR, for the fake commands. */
export function layoutFromEnv(env: NodeJS.ProcessEnv = process.env): SimLayout {
  const dir = env.SIMHOST_DIR;
  if (!dir) {
    process.stderr.write('simhost: SIMHOST_DIR is not set (the fake commands need the simulated machine directory)\n');
    process.exit(70);
  }
  return simLayout(dir);
}

export function readMachine(layout: SimLayout): MachineConfig {
  const m = readJson<MachineConfig>(layout.machine);
  if (!m) throw new Error(`${layout.machine} is missing: ${layout.dir} is not a simulated machine`);
  return m;
}
