/**
 * The Xentest model: a control file as typed objects (preferences, tree
 * locations, tests, domains), every value with the file and line it came from.
 * This is the only code that knows section and key names; the rest of xentest
 * receives a ControlFile. Interpreting a file finds every problem at once, so
 * that `xentest check` can list them all.
 */
import { posix } from 'node:path';
import type { ConfigDocument, Value } from './document.js';
import type { ConfigError, Location } from './errors.js';
import { didYouMean, Problems, type Problem } from './problems.js';
import { pythonReadError, readControlFileLenient, type ReadResult } from './reader.js';
import {
  DEFAULT_BUILD_TIMEOUT_S,
  DEFAULT_DOMAIN_TIMEOUT_S,
  DEFAULT_FETCH_LIMIT_BYTES,
  DEFAULT_LINUX_BUILD_COMMAND,
  DEFAULT_LINUX_INSTALL_COMMAND,
  DEFAULT_REBOOT_COMMAND,
  DEFAULT_XEN_BUILD_COMMAND,
  DEFAULT_XEN_INSTALL_COMMAND,
  ON_UNCHANGED,
  type OnUnchanged,
  DEFAULT_TEST_TIMEOUT_S,
  DOMAIN_KEYS,
  DOMAIN_PREFIX,
  LOCATIONS,
  PREFERENCE_KEYS,
  PREFERENCES,
  PROFILER_NAME,
  PROFILERS,
  TEST_KEYS,
  testKeyNumber,
  type KeySpec,
} from './schema.js';
import { SCHEDULE_HINT, validateSchedule, validateTimezone } from './schedule.js';
import { parseSource, type Source } from './sources.js';
import { pyLower, pyRepr } from './pystring.js';

export interface Located<T> extends Location {
  readonly value: T;
}

export interface TreeLocation extends Location {
  /** The key in [Locations] (lower-cased, as Python stores option names). */
  readonly name: string;
  readonly source: Source;
}

/** How to build and install one tree. */
export interface BuildRecipe {
  readonly build: Located<string>;
  readonly install: Located<string>;
}

/** results_db: a postgres:// URL that parses, or an absolute path (of a SQLite file). */
function validateResultsDb(v: string): string | undefined {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(v)?.[1]?.toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql') {
    try {
      new URL(v);
      return undefined;
    } catch {
      return `${JSON.stringify(v.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@'))} is not a valid URL`;
    }
  }
  if (scheme !== undefined) return `results are kept in SQLite or PostgreSQL, not ${scheme}`;
  return v.startsWith('/') ? undefined : `${JSON.stringify(v)} is not an absolute path`;
}

export interface Preferences extends Location {
  readonly xenTree: TreeLocation;
  readonly linuxTree?: TreeLocation;
  readonly sharedDir: Located<string>;
  readonly onUnchanged: OnUnchanged;
  readonly xen: BuildRecipe;
  readonly linux: BuildRecipe;
  readonly buildTimeoutSeconds: number;
  readonly fetchLimitBytes: number;
  readonly rebootCommand: Located<string>;
  readonly schedule?: Located<string>;
  readonly scheduleTimezone?: Located<string>;
  /** Where nights are stored (a SQLite file or a postgres:// URL); absent: the agent's default. */
  readonly resultsDb?: Located<string>;
  /** A shell command run after each night's report is written. */
  readonly reportCommand?: Located<string>;
}

export interface TestSpec extends Location {
  /** The section name, e.g. "LTP". */
  readonly name: string;
  /** Absent: nothing to fetch, the test runs what the domain has installed (xenfc, xentest balloon). */
  readonly source?: Located<Source>;
  /** Relative to the domain's tempdir, normalised, never escaping it. */
  readonly testDir: Located<string>;
  readonly buildCommand?: Located<string>;
  readonly installCommand?: Located<string>;
  readonly runCommand: Located<string>;
  readonly logDir?: Located<string>;
  readonly timeoutSeconds: number;
  /** What the test must do in an unprivileged domain (a domU). */
  readonly unprivileged: 'pass' | 'fail';
}

export interface DomainTest extends Location {
  /** The key that named it: test1, test2, ... */
  readonly key: string;
  readonly test: TestSpec;
}

export interface DomainSpec extends Location {
  /** The section name, e.g. "XENVM1". */
  readonly section: string;
  /** The domain's hostname. */
  readonly name: Located<string>;
  readonly tempdir: Located<string>;
  /** The xl config to start it with; absent for dom0 or a domain started elsewhere. */
  readonly config?: Located<string>;
  readonly timeoutSeconds: number;
  readonly tests: readonly DomainTest[];
}

/** A dom0 command that runs while the domains test. */
export interface ProfilerSpec extends Location {
  /** The key in [Profilers] (lower-cased, as Python stores option names): its output goes to NAME.log. */
  readonly name: string;
  readonly command: string;
}

export interface ControlFile {
  readonly file: string;
  readonly preferences: Preferences;
  readonly locations: ReadonlyMap<string, TreeLocation>;
  /** In the order the file lists them. */
  readonly profilers: readonly ProfilerSpec[];
  readonly tests: ReadonlyMap<string, TestSpec>;
  readonly domains: readonly DomainSpec[];
  readonly document: ConfigDocument;
}

export interface Interpretation {
  /** Present only when there are no errors (warnings allowed). */
  readonly control?: ControlFile;
  readonly problems: Problems;
}

/** A control file that cannot be used, with everything wrong with it. */
export class ControlFileInvalid extends Error {
  override readonly name = 'ControlFileInvalid';
  constructor(
    readonly file: string,
    readonly problems: readonly Problem[],
  ) {
    super(`${file} has ${problems.length} problem${problems.length === 1 ? '' : 's'}`);
  }
}

/** Read and interpret a control file; throws ControlFileInvalid listing every error. */
export function loadControlFile(path: string): ControlFile {
  const { control, problems } = interpretControlFile(readControlFileLenient(path));
  if (!control) throw new ControlFileInvalid(path, problems.errors);
  return control;
}

/** A section's values after interpolation, and which keys it wrote itself (not inherited from [DEFAULT]). */
interface SectionValues {
  readonly name: string;
  readonly at: Location;
  readonly values: Map<string, Value>;
  readonly own: Set<string>;
}

export function interpretControlFile(result: ReadResult): Interpretation {
  return new Interpreter(result).run();
}

class Interpreter {
  private readonly problems = new Problems();
  private readonly doc: ConfigDocument;
  private readonly file: string;
  private readonly sections = new Map<string, SectionValues>();

  constructor(private readonly result: ReadResult) {
    this.doc = result.doc;
    this.file = result.doc.file;
  }

  run(): Interpretation {
    this.reportReadProblems();
    this.interpolateAll();

    const locations = this.readLocations();
    const preferences = this.readPreferences(locations);
    const profilers = this.readProfilers();
    const domainSections = this.domainSectionNames();
    const testNames = this.testSectionNames(domainSections);
    const tests = new Map<string, TestSpec>();
    for (const name of testNames) {
      const spec = this.readTest(this.section(name));
      if (spec) tests.set(name, spec);
    }
    const domains = this.readDomains(domainSections, tests, testNames);
    this.reportUnusedSections(domainSections, testNames);

    const hasErrors = this.problems.errors.length > 0 || pythonReadError(this.result) !== undefined;
    if (hasErrors || !preferences) return { problems: this.problems };
    return {
      control: { file: this.file, preferences, locations, profilers, tests, domains, document: this.doc },
      problems: this.problems,
    };
  }

  // --- reading -------------------------------------------------------------

  private reportReadProblems(): void {
    for (const e of this.result.fatal) this.problems.fromConfigError(e);
    for (const bad of this.result.badLines) {
      const text = bad.text.replace(/\n$/, '');
      const at = { file: this.file, line: bad.line };
      if (/^\s*[=:]/.test(text)) {
        this.problems.error(at, `ParsingError: the option ${pyRepr(text)} has no name`, 'write the name before the = or :');
      } else {
        this.problems.error(
          at,
          `ParsingError: ${pyRepr(text)} is not a [section] header, an option or a comment`,
          'write "key = value" (or "key: value"); start comments with # or ;; indent a line to continue the value above',
        );
      }
    }
  }

  private interpolateAll(): void {
    const seen = new Set<string>();
    const onError = (e: ConfigError): void => {
      // An option in [DEFAULT] fails in every section: report it once.
      const key = `${e.line}\u0000${e.type}`;
      if (seen.has(key)) return;
      seen.add(key);
      this.problems.fromConfigError(e);
    };
    for (const name of this.doc.sectionNames()) {
      const raw = this.doc.sections.get(name);
      if (!raw) continue;
      const values = new Map<string, Value>();
      for (const v of this.doc.itemsCollecting(name, onError)) values.set(v.option, v);
      this.sections.set(name, { name, at: raw, values, own: new Set(raw.options.keys()) });
    }
  }

  private section(name: string): SectionValues {
    const s = this.sections.get(name);
    if (!s) throw new Error(`bug: no section ${name}`);
    return s;
  }

  private where(v: Location): Location {
    return { file: v.file, line: v.line };
  }

  /** A one-line value; an indented next line makes a value multi-line, which is a classic mistake. */
  private singleLine(s: SectionValues, key: string): Value | undefined {
    const v = s.values.get(key);
    if (!v) return undefined;
    const nl = v.value.indexOf('\n');
    if (nl >= 0) {
      const next = v.value.slice(nl + 1).split('\n')[0] ?? '';
      this.problems.error(
        v,
        `[${s.name}] ${key} continues onto the next line (${pyRepr(next)}) because that line is indented`,
        `${key} takes one line: remove the indentation of the line after it if it is a separate option`,
      );
      return undefined;
    }
    return v;
  }

  /** Whether the section (or [DEFAULT]) has the key, even if its value failed to interpolate. */
  private present(s: SectionValues, key: string): boolean {
    return this.doc.rawOption(s.name, key) !== undefined;
  }

  private required(s: SectionValues, key: string, what: string): Value | undefined {
    const v = this.singleLine(s, key);
    if (v === undefined && !this.present(s, key)) {
      this.problems.error(s.at, `[${s.name}] has no ${key}`, `add "${key} = ..." with ${what}`);
    } else if (v !== undefined && v.value === '') {
      this.problems.error(v, `[${s.name}] ${key} is empty`, `set it to ${what}`);
      return undefined;
    }
    return v && v.value !== '' ? v : undefined;
  }

  private unknownKeys(s: SectionValues, specs: readonly KeySpec[], accept: (key: string) => boolean = () => false): void {
    const known = specs.map((k) => k.key);
    for (const key of s.own) {
      // An empty name is already a ParsingError.
      if (key === '' || known.includes(key) || accept(key)) continue;
      const v = s.values.get(key);
      const at = v ?? this.doc.sections.get(s.name)?.options.get(key) ?? s.at;
      const suggestion = didYouMean(key, known);
      this.problems.warning(
        this.where(at),
        `[${s.name}] ${key} is not a key xentest knows; it is ignored`,
        suggestion || `the keys of this section are: ${known.join(', ')}`,
      );
    }
  }

  private absolutePath(s: SectionValues, v: Value, what: string): Located<string> | undefined {
    if (!v.value.startsWith('/')) {
      this.problems.error(v, `[${s.name}] ${v.option} = ${v.value} is not an absolute path`, `give ${what} as an absolute path, starting with /`);
      return undefined;
    }
    return { value: posix.normalize(v.value), ...this.where(v) };
  }

  /** A directory below the domain's tempdir: relative, and never climbing out of it. */
  private insideTempdir(s: SectionValues, v: Value): Located<string> | undefined {
    if (v.value.startsWith('/')) {
      this.problems.error(v, `[${s.name}] ${v.option} = ${v.value} is an absolute path`, `${v.option} is relative to the domain's tempdir; write it without the leading /`);
      return undefined;
    }
    const normal = posix.normalize(v.value);
    if (normal === '..' || normal.startsWith('../')) {
      this.problems.error(v, `[${s.name}] ${v.option} = ${v.value} leads outside the domain's tempdir`, `${v.option} must stay inside the tempdir: remove the ".." parts`);
      return undefined;
    }
    return { value: normal, ...this.where(v) };
  }

  private durationSeconds(s: SectionValues, key: string, fallback: number): number {
    const v = this.singleLine(s, key);
    if (!v) return fallback;
    const m = /^([0-9]+(?:\.[0-9]+)?)\s*([smh]?)$/.exec(v.value);
    const seconds = m ? Number(m[1]) * ({ '': 1, s: 1, m: 60, h: 3600 }[m[2] as '' | 's' | 'm' | 'h']) : NaN;
    if (!(seconds > 0)) {
      this.problems.error(v, `[${s.name}] ${key} = ${v.value} is not a duration`, 'write seconds (90), or a number with s, m or h (90s, 30m, 2h)');
      return fallback;
    }
    return seconds;
  }

  // --- sections ------------------------------------------------------------

  private readLocations(): Map<string, TreeLocation> {
    const out = new Map<string, TreeLocation>();
    const s = this.sections.get(LOCATIONS);
    if (!s) return out;
    for (const key of s.own) {
      const v = this.singleLine(s, key);
      if (!v) continue;
      const parsed = parseSource(v.value);
      if (!parsed.ok) {
        this.problems.error(v, `[${LOCATIONS}] ${key}: ${parsed.reason}`, parsed.hint);
        continue;
      }
      out.set(key, { name: key, source: parsed.source, ...this.where(v) });
    }
    return out;
  }

  /** Only the section's own keys: [DEFAULT]'s options show up in every section, but they are not profilers. */
  private readProfilers(): ProfilerSpec[] {
    const out: ProfilerSpec[] = [];
    const s = this.sections.get(PROFILERS);
    if (!s) return out;
    for (const key of s.own) {
      const v = this.singleLine(s, key);
      if (!v) continue; // multi-line (said so) or failed to interpolate (said so)
      if (!PROFILER_NAME.test(key) || /^\.+$/.test(key)) {
        this.problems.error(
          v,
          `[${PROFILERS}] ${pyRepr(key)} cannot be a profiler's name: its output goes to a file of that name`,
          'use letters, digits, "-", "_" and "." only, e.g. xentop = xentop -b -d 5',
        );
        continue;
      }
      if (v.value.trim() === '') {
        this.problems.error(v, `[${PROFILERS}] ${key} has no command`, `write the dom0 command to run after "${key} =", e.g. xentop -b -d 5, or remove the line`);
        continue;
      }
      out.push({ name: key, command: v.value, ...this.where(v) });
    }
    return out;
  }

  private locationNamed(s: SectionValues, v: Value, locations: Map<string, TreeLocation>): TreeLocation | undefined {
    // Python's cp.get() lower-cases the option it is asked for, so the match ignores case.
    const wanted = pyLower(v.value);
    const found = locations.get(wanted);
    if (found) return found;
    if (!this.sections.has(LOCATIONS)) {
      this.problems.error(v, `[${s.name}] ${v.option} = ${v.value}, but there is no [${LOCATIONS}] section`, `add a [${LOCATIONS}] section with "${wanted} = URL"`);
      return undefined;
    }
    const raw = this.section(LOCATIONS);
    if (raw.own.has(wanted)) return undefined; // the location itself is wrong, and said so
    const names = [...raw.own];
    const suggestion = didYouMean(wanted, names);
    this.problems.error(
      v,
      `[${s.name}] ${v.option} = ${v.value} names no location in [${LOCATIONS}]`,
      suggestion || (names.length ? `the locations are: ${names.join(', ')}` : `add "${wanted} = URL" to [${LOCATIONS}]`),
    );
    return undefined;
  }

  private readPreferences(locations: Map<string, TreeLocation>): Preferences | undefined {
    const s = this.sections.get(PREFERENCES);
    if (!s) {
      this.problems.error(
        { file: this.file, line: 0 },
        `there is no [${PREFERENCES}] section`,
        `add [${PREFERENCES}] with xen-tree (a key of [${LOCATIONS}]) and shared_dir (an absolute path)`,
      );
      return undefined;
    }
    this.unknownKeys(s, PREFERENCE_KEYS);
    const tree = this.required(s, 'xen-tree', `the name of a location in [${LOCATIONS}]`);
    const xenTree = tree ? this.locationNamed(s, tree, locations) : undefined;
    const linux = this.singleLine(s, 'linux-tree');
    const linuxTree = linux && linux.value !== '' ? this.locationNamed(s, linux, locations) : undefined;
    const shared = this.required(s, 'shared_dir', 'the absolute path of the shared directory');
    const sharedDir = shared ? this.absolutePath(s, shared, 'shared_dir') : undefined;
    const onUnchanged = this.choice(s, 'on_unchanged', ON_UNCHANGED, 'retest');
    const xen = { build: this.command(s, 'xen_build_command', DEFAULT_XEN_BUILD_COMMAND), install: this.command(s, 'xen_install_command', DEFAULT_XEN_INSTALL_COMMAND) };
    const linuxRecipe = { build: this.command(s, 'linux_build_command', DEFAULT_LINUX_BUILD_COMMAND), install: this.command(s, 'linux_install_command', DEFAULT_LINUX_INSTALL_COMMAND) };
    const buildTimeoutSeconds = this.durationSeconds(s, 'build_timeout', DEFAULT_BUILD_TIMEOUT_S);
    const fetchLimitBytes = this.byteSize(s, 'fetch_limit', DEFAULT_FETCH_LIMIT_BYTES);
    const rebootCommand = this.command(s, 'reboot_command', DEFAULT_REBOOT_COMMAND);
    const schedule = this.checked(s, 'schedule', validateSchedule, SCHEDULE_HINT);
    const scheduleTimezone = this.checked(s, 'schedule_timezone', validateTimezone, 'use an IANA name such as Europe/London or UTC');
    const resultsDb = this.checked(s, 'results_db', validateResultsDb, 'write an absolute path of a SQLite file, or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE');
    const reportCommand = this.singleLine(s, 'report_command');
    if (!xenTree || !sharedDir || (linux && linux.value !== '' && !linuxTree)) return undefined;
    return {
      xenTree,
      sharedDir,
      ...(linuxTree ? { linuxTree } : {}),
      onUnchanged,
      xen,
      linux: linuxRecipe,
      buildTimeoutSeconds,
      fetchLimitBytes,
      rebootCommand,
      ...(schedule ? { schedule } : {}),
      ...(scheduleTimezone ? { scheduleTimezone } : {}),
      ...(resultsDb ? { resultsDb } : {}),
      ...(reportCommand && reportCommand.value !== '' ? { reportCommand: { value: reportCommand.value, ...this.where(reportCommand) } } : {}),
      ...this.where(s.at),
    };
  }

  /** An optional one-line value that `validate` accepts (it returns what is wrong, or undefined). */
  private checked(s: SectionValues, key: string, validate: (v: string) => string | undefined, hint: string): Located<string> | undefined {
    const v = this.singleLine(s, key);
    if (!v || v.value === '') return undefined;
    const problem = validate(v.value);
    if (problem) {
      this.problems.error(v, `[${s.name}] ${key}: ${problem}`, hint);
      return undefined;
    }
    return { value: v.value, ...this.where(v) };
  }

  /** A shell command, or the default one (located at the section header) when the key is absent or empty. */
  private command(s: SectionValues, key: string, fallback: string): Located<string> {
    const v = s.values.get(key);
    return v && v.value !== '' ? { value: v.value, ...this.where(v) } : { value: fallback, ...this.where(s.at) };
  }

  private choice<T extends string>(s: SectionValues, key: string, allowed: readonly T[], fallback: T): T {
    const v = this.singleLine(s, key);
    if (!v || v.value === '') return fallback;
    if ((allowed as readonly string[]).includes(v.value)) return v.value as T;
    this.problems.error(v, `[${s.name}] ${key} = ${v.value} is not one of ${allowed.join(', ')}`, `write one of: ${allowed.join(', ')}`);
    return fallback;
  }

  private byteSize(s: SectionValues, key: string, fallback: number): number {
    const v = this.singleLine(s, key);
    if (!v || v.value === '') return fallback;
    const m = /^([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)i?B?$/i.exec(v.value);
    const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[(m?.[2] ?? '').toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
    const bytes = m ? Math.floor(Number(m[1]) * unit) : NaN;
    if (!(bytes > 0)) {
      this.problems.error(v, `[${s.name}] ${key} = ${v.value} is not a size`, 'write a number of bytes, or a number with K, M or G (500M, 4G)');
      return fallback;
    }
    return bytes;
  }

  private domainSectionNames(): string[] {
    const names: string[] = [];
    for (const name of this.sections.keys()) {
      if (name.startsWith(DOMAIN_PREFIX)) names.push(name);
      else if (name.toUpperCase().startsWith(DOMAIN_PREFIX)) {
        this.problems.warning(
          this.section(name).at,
          `[${name}] is not a domain: only sections whose names start with "${DOMAIN_PREFIX}" (in capitals) describe domains`,
          `rename it [${DOMAIN_PREFIX}${name.slice(DOMAIN_PREFIX.length)}] if it is a domain`,
        );
      }
    }
    if (names.length === 0) {
      this.problems.error(
        { file: this.file, line: 0 },
        `there are no domain sections ([${DOMAIN_PREFIX}0], [${DOMAIN_PREFIX}1], ...)`,
        `add a [${DOMAIN_PREFIX}0] section with name (the hostname), tempdir and test1`,
      );
    }
    return names;
  }

  /** Sections that describe tests: those a domain names, and those that look like tests. */
  private testSectionNames(domainSections: string[]): string[] {
    const names = new Set<string>();
    const special = (n: string): boolean => n === PREFERENCES || n === LOCATIONS || n === PROFILERS || domainSections.includes(n);
    for (const d of domainSections) {
      for (const [key, v] of this.section(d).values) {
        if (testKeyNumber(key) !== undefined && this.sections.has(v.value) && !special(v.value)) names.add(v.value);
      }
    }
    for (const [name, s] of this.sections) {
      if (!special(name) && (s.own.has('source_url') || s.own.has('run_command'))) names.add(name);
    }
    return [...this.sections.keys()].filter((n) => names.has(n));
  }

  private readTest(s: SectionValues): TestSpec | undefined {
    this.unknownKeys(s, TEST_KEYS);
    // No source_url (or an empty one): a test of what the domain has installed, run in test_dir (default: the tempdir).
    const url = this.singleLine(s, 'source_url');
    const fetched = url !== undefined && url.value !== '';
    let source: Located<Source> | undefined;
    if (url && fetched) {
      const parsed = parseSource(url.value);
      if (parsed.ok) source = { value: parsed.source, ...this.where(url) };
      else this.problems.error(url, `[${s.name}] source_url: ${parsed.reason}`, parsed.hint);
    }
    const dir = fetched ? this.required(s, 'test_dir', 'the directory the source unpacks into (. for its top)') : this.singleLine(s, 'test_dir');
    const testDir = dir && dir.value !== '' ? this.insideTempdir(s, dir) : fetched ? undefined : { value: '.', ...this.where(s.at) };
    if (!fetched && dir && dir.value !== '') {
      this.problems.warning(
        url ?? s.at,
        `[${s.name}] has no source_url: nothing is fetched, run_command runs what the domain has installed, in ${dir.value}`,
        'add "source_url = ..." if the test comes from a tarball, git or a directory; leave test_dir out for a test of installed tools',
      );
    }
    const log = this.singleLine(s, 'log_dir');
    const logDir = log && log.value !== '' ? this.insideTempdir(s, log) : undefined;
    const run = s.values.get('run_command');
    if (run ? run.value === '' : !this.present(s, 'run_command')) {
      this.problems.error(run ?? s.at, `[${s.name}] has no run_command`, 'add "run_command = ..." with the shell command that runs the test');
    }
    const command = (key: string): Located<string> | undefined => {
      const v = s.values.get(key);
      return v && v.value !== '' ? { value: v.value, ...this.where(v) } : undefined;
    };
    const timeoutSeconds = this.durationSeconds(s, 'timeout', DEFAULT_TEST_TIMEOUT_S);
    const unprivileged = this.singleLine(s, 'unprivileged');
    if (unprivileged && unprivileged.value !== 'pass' && unprivileged.value !== 'fail') {
      this.problems.error(unprivileged, `[${s.name}] unprivileged = ${unprivileged.value} is neither pass nor fail`, 'write "unprivileged = fail" for a test that must fail in a domU, or leave it out');
    }
    const runCommand = command('run_command');
    if ((fetched && !source) || !testDir || !runCommand || (log && log.value !== '' && !logDir)) return undefined;
    const build = command('build_command');
    const install = command('install_command');
    return {
      name: s.name,
      ...this.where(s.at),
      ...(source ? { source } : {}),
      testDir,
      runCommand,
      ...(build ? { buildCommand: build } : {}),
      ...(install ? { installCommand: install } : {}),
      ...(logDir ? { logDir } : {}),
      timeoutSeconds,
      unprivileged: unprivileged?.value === 'fail' ? 'fail' : 'pass',
    };
  }

  private readDomains(domainSections: string[], tests: Map<string, TestSpec>, testNames: string[]): DomainSpec[] {
    const domains: DomainSpec[] = [];
    const byHostname = new Map<string, Located<string>>();
    for (const sectionName of domainSections) {
      const s = this.section(sectionName);
      this.unknownKeys(s, DOMAIN_KEYS, (k) => testKeyNumber(k) !== undefined);
      const nameValue = this.required(s, 'name', "the domain's hostname");
      let name: Located<string> | undefined;
      if (nameValue) {
        if (!isHostname(nameValue.value)) {
          this.problems.error(nameValue, `[${s.name}] name = ${nameValue.value} is not a valid hostname`, 'use letters, digits and hyphens (and dots between labels), as the domain\'s hostname is');
        } else {
          const key = nameValue.value.toLowerCase();
          const first = byHostname.get(key);
          if (first) {
            this.problems.error(nameValue, `[${s.name}] name = ${nameValue.value} is also the name of the domain at line ${first.line}`, 'every domain needs its own hostname: its results directory is named after it');
          } else {
            name = { value: nameValue.value, ...this.where(nameValue) };
            byHostname.set(key, name);
          }
        }
      }
      const temp = this.required(s, 'tempdir', 'an absolute path for the domain\'s work directory');
      const tempdir = temp ? this.absolutePath(s, temp, 'tempdir') : undefined;
      const configValue = this.singleLine(s, 'config');
      // Empty or "none": dom0, or a domain started by other means.
      const wantsConfig = configValue !== undefined && configValue.value !== '' && configValue.value.toLowerCase() !== 'none';
      const config = wantsConfig ? this.absolutePath(s, configValue, 'the xl config') : undefined;
      const timeoutSeconds = this.durationSeconds(s, 'timeout', DEFAULT_DOMAIN_TIMEOUT_S);
      const domainTests = this.domainTests(s, tests, testNames);
      if (name && tempdir && domainTests && (!wantsConfig || config)) {
        domains.push({ section: s.name, name, tempdir, ...(config ? { config } : {}), timeoutSeconds, tests: domainTests, ...this.where(s.at) });
      }
    }
    return domains;
  }

  private domainTests(s: SectionValues, tests: Map<string, TestSpec>, testNames: string[]): DomainTest[] | undefined {
    const numbered: Array<{ n: number; key: string; v: Value }> = [];
    for (const [key, v] of s.values) {
      const n = testKeyNumber(key);
      if (n !== undefined) numbered.push({ n, key, v });
    }
    numbered.sort((a, b) => a.n - b.n);
    if (numbered.length === 0) {
      this.problems.warning(s.at, `[${s.name}] names no tests`, 'add test1 = SECTION (and test2, ...) naming test sections');
      return [];
    }
    let ok = true;
    const out: DomainTest[] = [];
    numbered.forEach(({ n, key, v }, i) => {
      const prev = numbered[i - 1];
      if (prev && prev.n === n) {
        this.problems.error(v, `[${s.name}] ${key} and ${prev.key} are both test number ${n}`, 'give every test its own number');
        ok = false;
        return;
      }
      if (v.value.includes('\n')) {
        this.singleLine(s, key);
        ok = false;
        return;
      }
      if (v.value === '') {
        this.problems.error(v, `[${s.name}] ${key} is empty`, 'name a test section, e.g. test1 = LTP');
        ok = false;
        return;
      }
      const test = tests.get(v.value);
      if (!test) {
        ok = false;
        if (testNames.includes(v.value)) return; // the test section's own errors are reported there
        const what = v.value === PREFERENCES || v.value === LOCATIONS || v.value === PROFILERS || v.value.startsWith(DOMAIN_PREFIX)
          ? `[${v.value}] is not a test section`
          : `there is no section [${v.value}]`;
        const suggestion = didYouMean(v.value, testNames);
        this.problems.error(v, `[${s.name}] ${key} = ${v.value}: ${what}`, suggestion || (testNames.length ? `the test sections are: ${testNames.join(', ')}` : `add a [${v.value}] section with source_url, test_dir and run_command`));
        return;
      }
      out.push({ key, test, ...this.where(v) });
    });
    return ok ? out : undefined;
  }

  private reportUnusedSections(domainSections: string[], testNames: string[]): void {
    for (const [name, s] of this.sections) {
      if (name === PREFERENCES || name === LOCATIONS || name === PROFILERS || domainSections.includes(name) || testNames.includes(name)) continue;
      if (name.toUpperCase().startsWith(DOMAIN_PREFIX)) continue; // already warned about
      const suggestion = didYouMean(name, [PREFERENCES, LOCATIONS, PROFILERS, ...testNames]);
      this.problems.warning(s.at, `[${name}] is not used: no domain names it and it is not a section xentest knows`, suggestion || 'remove it, or name it from a domain with testN = ' + name);
    }
  }
}

/** RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens. */
function isHostname(name: string): boolean {
  if (name.length > 253) return false;
  return name.split('.').every((label) => /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label));
}
