/**
 * The section and key names xentest understands, in one place. The model
 * (model.ts) reads values by these names; `xentest check` uses the lists to
 * catch misspelt keys; the README's control-file reference documents each one
 * (a test keeps the three in step).
 */

export const PREFERENCES = 'Preferences';
export const LOCATIONS = 'Locations';
/** dom0 commands that run while the domains test: `NAME = COMMAND`. */
export const PROFILERS = 'Profilers';
/** A profiler's name is the file name of its output (NAME.log), so it is kept to a safe set of characters. */
export const PROFILER_NAME = /^[A-Za-z0-9._-]+$/;
/** Every section whose name starts with this describes a domain (paper, section 5). */
export const DOMAIN_PREFIX = 'XENVM';

export interface KeySpec {
  readonly key: string;
  readonly required: boolean;
  readonly doc: string;
}

export const PREFERENCE_KEYS: readonly KeySpec[] = [
  { key: 'xen-tree', required: true, doc: 'the [Locations] key of the Xen tree to build tonight' },
  { key: 'shared_dir', required: true, doc: 'absolute path of the directory shared with every domain (normally NFS)' },
  { key: 'linux-tree', required: false, doc: 'the [Locations] key of a Linux kernel tree to build for dom0 and the domUs' },
  { key: 'on_unchanged', required: false, doc: 'when the tree is what the last good night built: retest (default: no build, no reboot, test again), skip (record and stop) or rebuild' },
  { key: 'xen_build_command', required: false, doc: 'builds the Xen tree, run in its top directory (default: make -j$XENTEST_JOBS dist)' },
  { key: 'xen_install_command', required: false, doc: 'installs the built Xen (default: make install)' },
  { key: 'linux_build_command', required: false, doc: 'builds the Linux tree (default: make -j$XENTEST_JOBS olddefconfig bzImage modules)' },
  { key: 'linux_install_command', required: false, doc: 'installs the built kernel (default: make modules_install install)' },
  { key: 'build_timeout', required: false, doc: 'limit for each build and install command (default 4h)' },
  { key: 'fetch_limit', required: false, doc: 'largest download or unpacked tree accepted, with K, M or G (default 4G)' },
  { key: 'reboot_command', required: false, doc: 'how to reboot into the new build (default: systemctl reboot)' },
  { key: 'schedule', required: false, doc: 'when `xentest schedule` starts a night: a cron expression, e.g. 0 2 * * * for 02:00' },
  { key: 'schedule_timezone', required: false, doc: "the time zone of schedule, e.g. Europe/London (default: the machine's)" },
  { key: 'results_db', required: false, doc: "the results database each night is stored in: a SQLite file (absolute path) or postgres://USER@HOST[:PORT]/DATABASE (default: XENTEST_DB, else <state dir>/results.db)" },
  { key: 'report_command', required: false, doc: 'run after each night\'s report is written, e.g. to mail it: mail -s "$XENTEST_REPORT_SUBJECT" you@example.org < "$XENTEST_REPORT_TEXT"' },
];

export const TEST_KEYS: readonly KeySpec[] = [
  { key: 'source_url', required: false, doc: 'where the test comes from: a tarball URL, a git URL with #ref, or a directory; leave it out for a test of installed tools (xenfc, xentest balloon)' },
  { key: 'test_dir', required: false, doc: 'the directory the source unpacks into, relative to the domain tempdir (required with source_url; without it, where the test runs, default the tempdir)' },
  { key: 'build_command', required: false, doc: 'shell command run in test_dir to build the test' },
  { key: 'install_command', required: false, doc: 'shell command run in test_dir after the build' },
  { key: 'run_command', required: true, doc: 'shell command run in test_dir to run the test; its exit status is the result' },
  { key: 'log_dir', required: false, doc: 'directory, relative to the domain tempdir, copied into the results afterwards' },
  { key: 'timeout', required: false, doc: 'limit for each of the commands: seconds, or a number with s, m or h (default 3h)' },
  { key: 'unprivileged', required: false, doc: '"fail" if the test must fail in an unprivileged domain (a domU); default "pass"' },
];

export const DOMAIN_KEYS: readonly KeySpec[] = [
  { key: 'name', required: true, doc: "the domain's hostname; its runner finds this section by it" },
  { key: 'tempdir', required: true, doc: "absolute path of the domain's work directory" },
  { key: 'config', required: false, doc: 'absolute path of an xl domain config to start it with; empty or "none" for dom0 or a domain started elsewhere' },
  { key: 'timeout', required: false, doc: 'how long dom0 waits for this domain to finish its tests (default 12h)' },
  { key: 'test<N>', required: false, doc: 'test1, test2, ...: the test sections to run, in numeric order' },
];

/** `test1`, `test2`, ...: the digits, or undefined for any other key. */
export function testKeyNumber(key: string): number | undefined {
  const m = /^test([0-9]+)$/.exec(key);
  return m ? Number(m[1]) : undefined;
}

export const DEFAULT_TEST_TIMEOUT_S = 3 * 3600;
export const DEFAULT_BUILD_TIMEOUT_S = 4 * 3600;
export const DEFAULT_FETCH_LIMIT_BYTES = 4 * 1024 ** 3;
export const DEFAULT_XEN_BUILD_COMMAND = 'make -j$XENTEST_JOBS dist';
export const DEFAULT_XEN_INSTALL_COMMAND = 'make install';
export const DEFAULT_LINUX_BUILD_COMMAND = 'make -j$XENTEST_JOBS olddefconfig bzImage modules';
export const DEFAULT_LINUX_INSTALL_COMMAND = 'make modules_install install';
export const DEFAULT_REBOOT_COMMAND = 'systemctl reboot';
export const ON_UNCHANGED = ['retest', 'skip', 'rebuild'] as const;
export type OnUnchanged = (typeof ON_UNCHANGED)[number];
export const DEFAULT_DOMAIN_TIMEOUT_S = 12 * 3600;
