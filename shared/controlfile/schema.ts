/**
 * The section and key names xentest understands, in one place. The model
 * (model.ts) reads values by these names; `xentest check` uses the lists to
 * catch misspelt keys; the README's control-file reference documents each one
 * (a test keeps the three in step).
 */

export const PREFERENCES = 'Preferences';
export const LOCATIONS = 'Locations';
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
];

export const TEST_KEYS: readonly KeySpec[] = [
  { key: 'source_url', required: true, doc: 'where the test comes from: a tarball URL, a git URL with #ref, or a directory' },
  { key: 'test_dir', required: true, doc: 'the directory the source unpacks into, relative to the domain tempdir' },
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
export const DEFAULT_DOMAIN_TIMEOUT_S = 12 * 3600;
