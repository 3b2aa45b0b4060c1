/** The simulated Xen host's state, as stored in D/state and D/log. */

export interface SimXenVersion {
  major: number;
  minor: number;
  /** '.5', '-unstable', '' ... (Xen's XEN_EXTRAVERSION). */
  extra: string;
}

export interface XlFault {
  exitStatus?: number;
  stderr?: string;
  /** Sleep forever: the caller's timeout has to kill it. */
  hang?: boolean;
}

export interface Faults {
  /** The next boot of a one-shot (next_entry) entry panics; the machine reboots into the default. Used up by that boot. */
  bootFails?: boolean;
  /** Per xl subcommand ('info', 'list', 'create', 'destroy', 'mem-set', ...). Stays until changed. */
  xl?: Record<string, XlFault>;
  /** The reboot command (reboot, systemctl reboot) exits 1 with a message. Stays until changed. */
  rebootFails?: boolean;
  /** The next boot comes up but the resume unit does not start. Used up by that boot. */
  resumeNotRun?: boolean;
  /** `xl create` of the domain named fails with this stderr and exit status (default 1); nothing is created or started. Stays until changed. */
  createFails?: Record<string, { stderr: string; exitStatus?: number }>;
  /** Domains that hang at boot: created and listed, but their runner never starts. Stays until changed. */
  domainHangs?: string[];
}

/** A domain's runner (init/xentest-runner.service) as the simulation started it. */
export interface RunnerState {
  /** The unit's ExecStart, machine paths. */
  command: string[];
  /** What ran on the host. */
  ran: string[];
  /** The runner's pid, also its process group (it runs detached); null if it could not be started. */
  pid: number | null;
  /** Field 22 of /proc/PID/stat, telling a reused pid apart. */
  startTime: string | null;
  /** XENTEST_ROOT it was given: the domain's filesystem. */
  root: string;
  log: string;
  startedAt: string;
  /** Recorded when it exits by itself (or is killed while its domain lives on); null while it runs. */
  exitStatus: number | null;
  signal: string | null;
  finishedAt: string | null;
  /** Why it could not start. */
  error?: string;
  /** How many times the unit's Restart= started it again in this boot of its domain (0: the first start). */
  restarts?: number;
  /** It ended and the unit will start it again at this time (Restart=, RestartSec=); null otherwise. */
  restartAt?: string | null;
}

/** Who the running hypervisor is: what `xl info` reports. Read from the image at boot. */
export interface HypervisorIdentity {
  /** As GRUB loaded it, e.g. /boot/xen-4.17-amd64.gz. */
  image: string;
  major: number;
  minor: number;
  extra: string;
  /** XEN_FULLVERSION: what xl info calls xen_version (4.17.5, 4.19-unstable). */
  version: string;
  changeset: string;
  compileDate: string;
  compileTime: string;
  compiledBy: string;
  compileDomain: string;
  compileHost: string;
  compiler: string;
  /** Hex of the NT_GNU_BUILD_ID note; '' if the image has none. */
  buildId: string;
  /** The multiboot command line after the image path, as xl info's xen_commandline shows it. */
  commandLine: string;
}

export interface KernelState {
  /** uname -r, from the image name (vmlinuz-6.1.0-18-amd64). */
  release: string;
  image: string;
  commandLine: string;
}

export interface DomainState {
  id: number;
  name: string;
  /**
   * What the toolstack gave it, MiB: memory at xl create, then each xl mem-set's target. The allocation itself
   * is the domain's balloon driver's (balloon.ts): it follows the target with a lag, and it is what xl list
   * shows as Mem and what the host's free memory is counted from.
   */
  memoryMiB: number;
  /** Static maximum, MiB (maxmem, or memory). */
  maxMemoryMiB: number;
  /** Balloon target, MiB (xl mem-set), in step with the balloon driver's; the allocation follows it with a lag. */
  targetMiB: number;
  vcpus: number;
  /** The six xl list state letters, e.g. r----- or -b----. */
  state: string;
  createdAt: string;
  /** The xl config file it was created from. */
  config: string | null;
  /** Its runner: null while not (yet) started; absent if the machine starts none. */
  runner?: RunnerState | null;
  /** The guest hangs at boot (the domainHangs fault): its runner never starts. */
  hung?: boolean;
}

export interface RunningState {
  /** The boot (boots.jsonl n) that brought this up. */
  boot: number;
  bootedAt: string;
  /** 'xen': a hypervisor with dom0; 'linux': a native Linux entry (no Xen: xl fails); 'down': nothing runs. */
  kind: 'xen' | 'linux' | 'down';
  /** Menu titles from the top down to the entry booted. */
  entry: string[];
  hypervisor: HypervisorIdentity | null;
  /** The kernel running (dom0's when kind is 'xen'). */
  kernel: KernelState | null;
  /** Domain 0, under Xen. */
  dom0: DomainState | null;
  /** Guest domains (dom0 is not in this list); empty after every boot. */
  domains: DomainState[];
  nextDomid: number;
  /** Why the machine is down, when it is. */
  down?: string;
}

export interface BootAttempt {
  /** What GRUB's default was when it looked it up: a '>'-path of ids or titles, or a number. */
  asked: string;
  /** Where it came from: grubenv's next_entry (one-shot), or the default (saved_entry, GRUB_DEFAULT). */
  source: 'next_entry' | 'default';
  /** Titles of the entry GRUB ran, top level first; null if GRUB found nothing to run. */
  titles: string[] | null;
  ids: Array<string | null> | null;
  /** GRUB's own fallback (an unknown entry boots the first entry of its menu level). */
  resolution: string | null;
  image: string | null;
  outcome: 'booted' | 'crashed';
  /** Why it crashed. */
  reason: string | null;
}

export interface ResumeRecord {
  /** The ExecStart command as the unit names it (absolute paths of the machine). */
  command: string[];
  /** What ran on the host: paths mapped under the machine root. */
  ran: string[] | null;
  exitStatus: number | null;
  signal: string | null;
  log: string;
  /** Why it did not run: 'condition' (ConditionPathExists failed), 'fault' (resumeNotRun), 'no-unit'. */
  skipped: 'condition' | 'fault' | 'no-unit' | null;
  /** The unit's conditions, machine paths, and whether each held. */
  conditions: Array<{ path: string; held: boolean }>;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface ShutdownRecord {
  /** The process the boot waited for: the xentest lock holder, else the reboot command's parent. */
  waitedFor: { pid: number; why: 'lock' | 'caller' } | null;
  /** It was still there after the shutdown timeout and was killed (SIGKILL, with its descendants). */
  killed: number[];
  waitedMs: number;
}

export interface BootRecord {
  n: number;
  cause: 'create' | 'reboot' | 'power-cycle';
  requestedAt: string;
  bootedAt: string | null;
  finishedAt: string;
  /** The first thing GRUB was asked to boot. */
  asked: { entry: string; source: 'next_entry' | 'default' };
  /** Titles of the entry that finally booted, joined by '>'; null if the machine is down. */
  entry: string | null;
  /** The same entry by ids (a title where the entry has no id). */
  entryId: string | null;
  /** The hypervisor image booted (null for native Linux or down). */
  image: string | null;
  hypervisorVersion: string | null;
  buildId: string | null;
  /** The machine did not come up on the entry it was asked for. */
  fellBack: boolean;
  reason: string | null;
  attempts: BootAttempt[];
  /** Nothing came up (every attempt crashed): the machine waits for a power cycle. */
  down: boolean;
  /** The boot was cut short by a power cycle before it finished. */
  powerLost?: boolean;
  shutdown: ShutdownRecord | null;
  resume: ResumeRecord | null;
  /** resume.exitStatus: null when the unit did not run (or was killed). */
  resumeExitStatus: number | null;
}

export interface CommandRecord {
  argv: string[];
  /** null: it never finished by itself (a hang fault). */
  exitStatus: number | null;
  at: string;
  ms?: number;
  hung?: boolean;
}

/** D/state/machine.json: what the machine is, fixed at SimHost.create. */
export interface MachineConfig {
  uuid: string;
  hostname: string;
  /** GRUB's name for the root device (/dev/sda1 in grub-mkconfig's view). */
  device: string;
  totalMemoryMiB: number;
  nrCpus: number;
  /** How long a reboot waits for the lock holder before it SIGKILLs it (systemd's final kill). */
  shutdownTimeoutMs: number;
  /** The resume unit file read at every boot. */
  resumeUnit: string;
  /** Extra environment for the resume unit (systemd's Environment=). */
  resumeEnv: Record<string, string>;
  /** The runner unit started in dom0 at every boot and in every domain xl creates; null: no runner is ever started. */
  runnerUnit: string | null;
  /** Extra environment for every runner. */
  runnerEnv: Record<string, string>;
  /** The shared directory on the host (XENTEST_SHARED_DIR of every runner). */
  sharedDir: string;
  /** The dist/scripts/simhost directory the fake commands run from. */
  simhostDist: string;
  node: string;
  /** `uname -v` of the kernel, for xl info's version line. */
  kernelBuild: string;
  /** dom0's balloon interface: sysfs (mainline Linux), proc (a XenLinux dom0) or none. Absent: sysfs. */
  dom0Balloon?: 'sysfs' | 'proc' | 'none';
  createdAt: string;
}
