/**
 * A night on the simulated Xen host, for the end-to-end tests, the benchmarks
 * and the demo: a machine (SimHost), a real HTTP server on 127.0.0.1 serving
 * a real Xen-like tarball, a control file pointing at it, and the real
 * `xentest` executable.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SimHost, type BootRecord } from './host.js';
import { writeSimXenTarball, type SimXenVersion } from './xentree.js';

/** The repository's xentest executable (this file runs from dist/scripts/simhost/). */
export const XENTEST_BIN = fileURLToPath(new URL('../../../bin/xentest.js', import.meta.url));

export interface ServedRequest {
  path: string;
  conditional: boolean;
  status: number;
  bodyBytes: number;
}

/** Serves files from a directory with ETag/Last-Modified and 304s, recording every request. */
export class TarballServer {
  readonly requests: ServedRequest[] = [];
  private server!: Server;
  port = 0;

  constructor(readonly dir: string) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const path = decodeURIComponent((req.url ?? '/').split('?')[0] as string);
      const conditional = req.headers['if-none-match'] !== undefined || req.headers['if-modified-since'] !== undefined;
      let body: Buffer;
      try {
        body = readFileSync(join(this.dir, path));
      } catch {
        res.writeHead(404).end('not found');
        this.requests.push({ path, conditional, status: 404, bodyBytes: 0 });
        return;
      }
      const etag = `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`;
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, { ETag: etag }).end();
        this.requests.push({ path, conditional, status: 304, bodyBytes: 0 });
        return;
      }
      res.writeHead(200, { ETag: etag, 'Content-Length': body.length, 'Content-Type': 'application/gzip' }).end(body);
      this.requests.push({ path, conditional, status: 200, bodyBytes: body.length });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  url(name: string): string {
    return `http://127.0.0.1:${this.port}/${name}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export interface AgentRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Run the real xentest executable in the simulated machine's environment. */
export function runAgent(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 120_000): Promise<AgentRun> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [XENTEST_BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

export interface LabOptions {
  version?: SimXenVersion;
  failBuild?: boolean;
  unbootable?: boolean;
  buildSleepSeconds?: number;
  preferences?: Record<string, string>;
  /** Environment the resume unit runs with at boot (systemd does not pass the caller's). */
  resumeEnv?: Record<string, string>;
  /** Test sections by name, each a section's keys (default: `smoke`, a one-line check). */
  tests?: Record<string, Record<string, string>>;
  /** Guests besides dom0, each with an xl config; every domain runs every test in `tests`. */
  guests?: string[];
  /** A guest's kernel image (default /boot/vmlinuz-guest); /boot/vmlinuz-2.6.18-xen makes it a XenLinux guest, with /proc/xen/balloon. */
  guestKernels?: Record<string, string>;
  /** Which tests each domain runs, when not every one. */
  domainTests?: Record<string, string[]>;
  /** Each XENVM section's `timeout` (default 60). */
  domainTimeoutSeconds?: number;
  /** A [Profilers] section: dom0 commands by name (default none). */
  profilers?: Record<string, string>;
}

export const NEW_XEN: SimXenVersion = { major: 4, minor: 19, extra: '-unstable' };

/** dom0's hostname on the lab machine, and so the name of its XENVM section. */
export const LAB_HOSTNAME = 'simhost';

/** A simulated machine, a served tarball of a Xen-like tree, and a control file for them. */
export class NightLab {
  readonly sim: SimHost;
  readonly control: string;
  readonly tarball: string;
  /** The domains of the control file: dom0 (LAB_HOSTNAME) first, then the guests. */
  readonly domains: string[];
  private readonly tests: Record<string, Record<string, string>>;

  constructor(
    readonly dir: string,
    readonly server: TarballServer,
    private readonly options: LabOptions = {},
  ) {
    this.domains = [LAB_HOSTNAME, ...(options.guests ?? [])];
    this.tests = options.tests ?? { smoke: { source_url: this.writeSmokeSuite(), test_dir: 'smoke', run_command: './run' } };
    mkdirSync(join(dir, 'shared'), { recursive: true });
    this.sim = SimHost.create(join(dir, 'machine'), {
      hostname: LAB_HOSTNAME,
      sharedDir: join(dir, 'shared'),
      ...(options.resumeEnv ? { resumeEnv: options.resumeEnv } : {}),
    });
    this.tarball = 'xen-unstable.tar.gz';
    this.writeTarball(options);
    this.control = join(dir, 'nightly.cfg');
    this.writeControl(this.server.url(this.tarball), options.preferences ?? {});
  }

  writeTarball(options: LabOptions): void {
    writeSimXenTarball(join(this.server.dir, this.tarball), {
      version: options.version ?? NEW_XEN,
      changeset: `git:${createHash('sha1').update(this.dir + JSON.stringify(options)).digest('hex').slice(0, 12)}`,
      ...(options.failBuild ? { failBuild: true } : {}),
      ...(options.unbootable ? { unbootable: true } : {}),
      ...(options.buildSleepSeconds ? { buildSleepSeconds: options.buildSleepSeconds } : {}),
    });
  }

  /** `locations`: more [Locations] entries, e.g. a Linux tree for `linux-tree`. */
  writeControl(location: string, preferences: Record<string, string>, locations: Record<string, string> = {}): void {
    const prefs = { 'xen-tree': 'xen-unstable', shared_dir: join(this.dir, 'shared'), reboot_command: 'reboot', ...preferences };
    mkdirSync(join(this.dir, 'shared'), { recursive: true });
    writeFileSync(
      this.control,
      [
        '[Preferences]',
        ...Object.entries(prefs).map(([k, v]) => `${k} = ${v}`),
        '',
        '[Locations]',
        `xen-unstable = ${location}`,
        ...Object.entries(locations).map(([k, v]) => `${k} = ${v}`),
        '',
        ...(this.options.profilers ? ['[Profilers]', ...Object.entries(this.options.profilers).map(([k, v]) => `${k} = ${v}`), ''] : []),
        ...Object.entries(this.tests).flatMap(([name, keys]) => [`[${name}]`, ...Object.entries(keys).map(([k, v]) => `${k} = ${v}`), '']),
        ...this.domains.flatMap((name, i) => [
          `[XENVM${i}]`,
          `name = ${name}`,
          ...(name === LAB_HOSTNAME ? [] : [`config = ${this.writeXlConfig(name)}`]),
          `tempdir = ${this.tempdir(name)}`,
          `timeout = ${this.options.domainTimeoutSeconds ?? 60}`,
          ...(this.options.domainTests?.[name] ?? Object.keys(this.tests)).map((t, n) => `test${n + 1} = ${t}`),
          '',
        ]),
      ].join('\n'),
    );
  }

  /** The domain's `tempdir`: dom0's is <dir>/tmp, a guest's <dir>/tmp-<name>. */
  tempdir(name: string): string {
    return join(this.dir, name === LAB_HOSTNAME ? 'tmp' : `tmp-${name}`);
  }

  /** A small PV guest's xl configuration. */
  private writeXlConfig(name: string): string {
    const file = join(this.dir, 'xl', `${name}.cfg`);
    mkdirSync(join(this.dir, 'xl'), { recursive: true });
    const kernel = this.options.guestKernels?.[name] ?? '/boot/vmlinuz-guest';
    writeFileSync(file, `name = "${name}"\ntype = "pv"\nmemory = 256\nvcpus = 1\nkernel = "${kernel}"\n`);
    return file;
  }

  /** The night's directory once the night has begun (the newest under the state directory). */
  nightDir(): string | undefined {
    const nights = join(this.stateDir, 'nights');
    const all = existsSync(nights) ? readdirSync(nights).sort() : [];
    return all.length ? join(nights, all[all.length - 1] as string) : undefined;
  }

  /** `xentest build`, then the boot it reboots into, which runs the rest of the night (resume). */
  async night(extra: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<{ build: AgentRun; boot: BootRecord; dir: string }> {
    const build = await this.build(extra);
    if (build.status !== 0 || !/rebooting; it continues at boot/.test(build.stdout)) {
      throw new Error(`xentest build did not reboot (exit ${build.status}):\n${build.stdout}${build.stderr}`);
    }
    const boot = await this.sim.waitForBoot(1, timeoutMs);
    return { build, boot, dir: this.nightDir() as string };
  }

  /** The machine goes down for good: every process it started (runners, boots) ends. */
  close(): Promise<void> {
    return this.sim.powerOff();
  }

  /** A one-check test suite in a directory: the runner copies it to tempdir/smoke and runs ./run. */
  private writeSmokeSuite(): string {
    const suite = join(this.dir, 'suites', 'smoke');
    mkdirSync(suite, { recursive: true });
    writeFileSync(join(suite, 'run'), '#!/bin/sh\necho "smoke: $(hostname) ok"\n', { mode: 0o755 });
    return suite;
  }

  env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return { ...this.sim.env(process.env), ...extra };
  }

  build(extra: NodeJS.ProcessEnv = {}, timeoutMs?: number): Promise<AgentRun> {
    return runAgent(['build', this.control], this.env(extra), timeoutMs);
  }

  get stateDir(): string {
    return join(this.sim.root, 'var/lib/xentest');
  }
}
