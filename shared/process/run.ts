/**
 * Running an external command the way the agent must: with a time limit, in
 * its own process group (so a timeout kills everything it started), stdin
 * from /dev/null, and its output streamed to a log file as it comes. Only the
 * last few kilobytes are kept in memory, for the error message.
 *
 * Unless a heartbeat wants the lines as they come, the command writes straight
 * into the log (its stdout and stderr are the log's file descriptor): the
 * output never passes through the agent, so gigabytes of it cost the agent
 * nothing, and the tail is read back from the end of the log afterwards.
 *
 * Nothing here rejects for a command that could not be started: a missing
 * program or working directory is a CmdResult with exit status 127 (126 when
 * the program exists but may not be executed), as a shell would report it.
 * Wrong options (no timeout, an unwritable log file) are bugs and throw.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as sleep } from 'node:timers/promises';
import { readProcStat } from './procstat.js';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Required: nothing runs without a limit. */
  timeoutMs: number;
  /** stdout and stderr are appended here, interleaved, as they come; the file and its directory are created. */
  logFile: string;
  /** SIGTERM goes to the whole process group on timeout or abort, SIGKILL this long after (default 5000). */
  killGraceMs?: number;
  /** The last N bytes of output kept in memory for error messages (default 4096). */
  tailBytes?: number;
  /** Abort = the same as a timeout, but reported as aborted. */
  signal?: AbortSignal;
  /** The pid, which is also the process group id (a restarted agent can kill a group a killed agent left). */
  onSpawn?: (pid: number) => void;
  /** Each complete output line (stdout and stderr separately), for progress display; the output then passes through the agent. */
  heartbeat?: (line: string) => void;
}

/** After autoserv's CmdResult (command, exit_status, duration, aborted), with the output in a log file. */
export interface CmdResult {
  command: string;
  /** null when killed by a signal. */
  exitStatus: number | null;
  signal: NodeJS.Signals | null;
  durationMs: number;
  timedOut: boolean;
  aborted: boolean;
  /** The last tailBytes of output, decoded as UTF-8. */
  tail: string;
  logFile: string;
  /** The limit it ran under (for messages). */
  timeoutMs: number;
  /** Set when the command could not be started at all (exitStatus is then 127 or 126). */
  spawnError?: string;
}

const DEFAULT_KILL_GRACE_MS = 5000;
const DEFAULT_TAIL_BYTES = 4096;
/** setTimeout's limit; longer delays fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/**
 * After the command exits, how long to keep reading output that background
 * processes it left behind still hold open, before giving up on it.
 */
const OUTPUT_DRAIN_MS = 2000;
/** After SIGKILL, how long to wait for the group to disappear (init has to reap orphans). */
const REAP_WAIT_MS = 3000;
/** A heartbeat line longer than this is cut: one line is all we buffer. */
const MAX_HEARTBEAT_LINE = 8192;

/**
 * With onSpawn, the shell first waits on fd 3 for the agent's word that the
 * group is recorded (a newline; end of file, from an agent killed before it
 * got that far, and nothing runs), then runs the command as `sh -c` would.
 * Without it, a kill between the start and the record left a group running
 * that the next run could not know of (a build beside the build run again).
 */
const GATED = 'IFS= read -r _ <&3 || exit 125; exec 3<&-; exec /bin/sh -c "$1"';

export function runCommand(command: string, options: RunOptions): Promise<CmdResult> {
  const limits = validateOptions(options);
  if (options.onSpawn) return run(command, '/bin/sh', ['-c', GATED, 'sh', command], options, limits, true);
  return run(command, '/bin/sh', ['-c', command], options, limits);
}

export function runArgv(argv: readonly string[], options: RunOptions): Promise<CmdResult> {
  const [file, ...args] = argv;
  if (file === undefined || file === '') throw new TypeError('runArgv: argv must name a program');
  const limits = validateOptions(options);
  return run(argv.map(shellQuote).join(' '), file, args, options, limits);
}

/**
 * Signal a whole process group. True if the group existed (even if it is not
 * ours to signal), false if no such group. Refuses the ids that mean "every
 * process" or "my own group" to kill(2).
 */
export function killProcessGroup(pgid: number, signal: NodeJS.Signals = 'SIGTERM'): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) throw new RangeError(`killProcessGroup: ${pgid} is not a process group id`);
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return false;
    if (code === 'EPERM') return true;
    throw e;
  }
}

/** The last line the command printed, without surrounding white space; '' if it printed nothing. */
export function lastOutputLine(r: CmdResult): string {
  return r.tail.trimEnd().split('\n').pop()?.trim() ?? '';
}

/** "exited with status 2 after 3.1 s", "killed after the 600 s timeout", ... */
export function describeResult(r: CmdResult): string {
  if (r.spawnError !== undefined) return `could not be started: ${r.spawnError}`;
  const after = `after ${formatDuration(r.durationMs)}`;
  if (r.timedOut) {
    const how = r.signal === 'SIGKILL' ? ' (SIGKILL: it did not stop on SIGTERM)' : '';
    return `killed after the ${formatSeconds(r.timeoutMs)} timeout${how}`;
  }
  if (r.aborted) return `aborted ${after}`;
  if (r.signal !== null) return `killed by ${r.signal} ${after}`;
  return `exited with status ${r.exitStatus} ${after}`;
}

/** "12 ms", "3.1 s", "12 min 5 s", "2 h 3 min". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const totalSeconds = Math.round(s);
  const h = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const sec = totalSeconds % 60;
  return h > 0 ? `${h} h ${m} min` : `${m} min ${sec} s`;
}

function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/** Quote an argument for display the way a POSIX shell would read it back. */
export function shellQuote(arg: string): string {
  if (/^[\w@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

function validateOptions(o: RunOptions): { graceMs: number; tailBytes: number } {
  if (typeof o.timeoutMs !== 'number' || !Number.isFinite(o.timeoutMs) || o.timeoutMs <= 0 || o.timeoutMs > MAX_TIMER_MS) {
    throw new RangeError(`timeoutMs must be a positive number of milliseconds up to ${MAX_TIMER_MS}, not ${o.timeoutMs}`);
  }
  const graceMs = o.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  if (!Number.isFinite(graceMs) || graceMs < 0 || graceMs > MAX_TIMER_MS) throw new RangeError(`killGraceMs ${graceMs} is out of range`);
  const tailBytes = o.tailBytes ?? DEFAULT_TAIL_BYTES;
  if (!Number.isInteger(tailBytes) || tailBytes < 0) throw new RangeError(`tailBytes must be a whole number >= 0, not ${tailBytes}`);
  if (typeof o.logFile !== 'string' || o.logFile === '') throw new TypeError('logFile is required');
  return { graceMs, tailBytes };
}

/** Opens the log (creating it and its directory) and writes the header synchronously, so a bad path throws here. */
function openLog(logFile: string, header: string): number {
  fs.mkdirSync(path.dirname(path.resolve(logFile)), { recursive: true });
  const fd = fs.openSync(logFile, 'a+');
  fs.writeSync(fd, header);
  return fd;
}

function headerLine(command: string, cwd: string, start: Date): string {
  return `$ ${oneLine(command)}  # cwd=${cwd} started=${start.toISOString()}\n`;
}

function oneLine(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
}

/** Option mistakes are bugs: runCommand and runArgv throw them synchronously, before anything runs. */
async function run(
  command: string,
  file: string,
  args: string[],
  options: RunOptions,
  { graceMs, tailBytes }: { graceMs: number; tailBytes: number },
  /** The command waits on fd 3 until onSpawn has returned (runCommand's GATED). */
  gated = false,
): Promise<CmdResult> {
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const logFd = openLog(options.logFile, headerLine(command, cwd, new Date()));
  const direct = options.heartbeat === undefined;
  const outputStart = direct ? fs.fstatSync(logFd).size : 0;
  let logError: Error | undefined;
  const log: LogSink = direct ? { fd: logFd } : { stream: fs.createWriteStream(options.logFile, { fd: logFd, autoClose: true }) };
  log.stream?.on('error', (e) => {
    logError ??= e;
  });
  const base = { command, logFile: options.logFile, timeoutMs: options.timeoutMs };

  const notStarted = async (status: number, reason: string, aborted = false): Promise<CmdResult> => {
    const result: CmdResult = {
      ...base,
      exitStatus: aborted ? null : status,
      signal: null,
      durationMs: 0,
      timedOut: false,
      aborted,
      tail: reason + '\n',
      ...(aborted ? {} : { spawnError: reason }),
    };
    await finishLog(log, aborted ? `aborted before it started` : describeResult(result), true);
    return result;
  };

  if (options.signal?.aborted) return notStarted(0, 'aborted before it started', true);
  const cwdProblem = checkDirectory(cwd);
  if (cwdProblem) return notStarted(127, cwdProblem);

  const t0 = performance.now();
  let child: ChildProcess;
  try {
    const out = direct ? logFd : 'pipe';
    child = spawn(file, args, { cwd, env: options.env ?? process.env, detached: true, stdio: gated ? ['ignore', out, out, 'pipe'] : ['ignore', out, out] });
  } catch (e) {
    // spawn throws synchronously only for malformed arguments (e.g. NUL bytes).
    return notStarted(127, `${file}: ${(e as Error).message}`);
  }
  const spawnFailure = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', (e) => resolve(e));
  });
  if (spawnFailure) return notStarted(...describeSpawnFailure(file, cwd, spawnFailure));
  const pgid = child.pid as number;
  const notes: string[] = [];
  child.on('error', (e) => notes.push(e.message));
  try {
    options.onSpawn?.(pgid);
  } catch (e) {
    // A bug in the caller: do not leave the command running behind the exception.
    killProcessGroup(pgid, 'SIGKILL');
    throw e;
  }
  if (gated) {
    // Recorded: the command may start. (If it is gone already, its exit says why.)
    const gate = child.stdio[3] as Writable;
    gate.on('error', () => undefined);
    gate.end('\n');
  }

  // Piped output (for the heartbeat): to the log (respecting its backpressure), the tail, and the heartbeat.
  const tail = new TailBuffer(tailBytes);
  const streams = direct ? [] : [child.stdout!, child.stderr!];
  const lines = options.heartbeat ? streams.map(() => new LineSplitter(options.heartbeat!)) : undefined;
  let lastByte = 0x0a;
  let paused = false;
  streams.forEach((stream, i) => {
    stream.on('data', (chunk: Buffer) => {
      tail.push(chunk);
      lines?.[i]!.push(chunk);
      if (chunk.length > 0) lastByte = chunk[chunk.length - 1]!;
      if (logError || !log.stream) return;
      if (!log.stream.write(chunk) && !paused) {
        paused = true;
        for (const s of streams) s.pause();
        log.stream!.once('drain', () => {
          paused = false;
          for (const s of streams) s.resume();
        });
      }
    });
  });
  const outputClosed = Promise.all(streams.map((s) => new Promise<void>((resolve) => s.once('close', () => resolve()))));

  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let durationMs = 0;
  const exitedP = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      durationMs = performance.now() - t0;
      exited = { code, signal };
      resolve();
    });
  });

  let timedOut = false;
  let aborted = false;
  let killing: Promise<void> | undefined;
  let killStarted!: () => void;
  const killStartedP = new Promise<void>((resolve) => (killStarted = resolve));
  const stopGroup = (why: 'timeout' | 'abort'): void => {
    if (killing || exited) return;
    if (why === 'timeout') timedOut = true;
    else aborted = true;
    killing = killGroup(pgid, graceMs, () => exited !== undefined, notes);
    killStarted();
  };
  const timer = setTimeout(() => stopGroup('timeout'), options.timeoutMs);
  const onAbort = (): void => stopGroup('abort');
  options.signal?.addEventListener('abort', onAbort, { once: true });

  await Promise.race([exitedP, killStartedP]);
  if (killing) {
    await killing;
    // A leader that survives SIGKILL (stuck in the kernel, e.g. on a dead NFS
    // server) is given up on rather than waited for forever.
    if (!exited) await raceTimeout(exitedP, 1000);
    if (!exited) notes.push(`process ${pgid} did not exit after SIGKILL; gave up waiting for it`);
  }
  clearTimeout(timer);
  options.signal?.removeEventListener('abort', onAbort);

  // Background processes may still hold the output open: read a little
  // longer, then stop listening (a killed group closes it as it dies).
  const drained = direct || (await raceTimeout(outputClosed, OUTPUT_DRAIN_MS));
  if (direct) lastByte = readTail(logFd, outputStart, tail);
  if (!drained) {
    for (const s of streams) s.destroy();
    notes.push(`stopped reading output ${formatSeconds(OUTPUT_DRAIN_MS)} after the command exited: processes still hold it open`);
  } else if (!killing && groupHasLiveMembers(pgid)) {
    notes.push(`processes of group ${pgid} were still running when the command exited`);
  }
  lines?.forEach((l) => l.end());

  const result: CmdResult = {
    ...base,
    exitStatus: exited?.code ?? null,
    signal: exited?.signal ?? null,
    durationMs: exited ? durationMs : performance.now() - t0,
    timedOut,
    aborted,
    tail: tail.toString() + (logError ? `\n(writing ${options.logFile} failed: ${logError.message})\n` : ''),
  };
  await finishLog(log, [describeResult(result), ...notes].join('; '), lastByte === 0x0a);
  return result;
}

function describeSpawnFailure(file: string, cwd: string, e: NodeJS.ErrnoException): [number, string] {
  switch (e.code) {
    case 'ENOENT':
      return [127, checkDirectory(cwd) ?? `${file}: command not found`];
    case 'EACCES':
      return [126, `${file}: permission denied`];
    case 'ENOEXEC':
      return [126, `${file}: not an executable format`];
    default:
      return [127, `${file}: ${e.message}`];
  }
}

/** True if `p` settled within `ms`, false otherwise; leaves no timer behind. */
async function raceTimeout(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}

function checkDirectory(dir: string): string | undefined {
  try {
    if (!fs.statSync(dir).isDirectory()) return `working directory ${dir} is not a directory`;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `working directory ${dir} does not exist` : `working directory ${dir}: ${(e as Error).message}`;
  }
  return undefined;
}

/** The log: its descriptor, which the command writes to itself, or a stream the agent writes the piped output to. */
type LogSink = { fd: number; stream?: undefined } | { stream: fs.WriteStream; fd?: undefined };

function finishLog(log: LogSink, footer: string, atLineStart: boolean): Promise<void> {
  const text = `${atLineStart ? '' : '\n'}# ${footer} (finished ${new Date().toISOString()})\n`;
  const { stream, fd } = log;
  if (fd !== undefined) {
    // A footer that cannot be written (disk full) loses only the footer; the result stands.
    try {
      fs.writeSync(fd, text);
    } catch {
      /* the command's own output is already in the file */
    }
    fs.closeSync(fd);
    return Promise.resolve();
  }
  // The stream's 'error' listener (set at creation) records a failure; resolve either way.
  return new Promise((resolve) => {
    if (stream.destroyed) return resolve();
    stream.once('close', () => resolve());
    stream.end(text);
  });
}

/** The last bytes the command wrote to the log (from `from` on) into `tail`; returns the very last byte (a newline if none). */
function readTail(fd: number, from: number, tail: TailBuffer): number {
  const size = fs.fstatSync(fd).size;
  const start = Math.max(from, size - tail.capacity);
  const buf = Buffer.alloc(size - start);
  let got = 0;
  while (got < buf.length) {
    const n = fs.readSync(fd, buf, got, buf.length - got, start + got);
    if (n === 0) break;
    got += n;
  }
  tail.push(buf.subarray(0, got));
  return got > 0 ? (buf[got - 1] as number) : 0x0a;
}

/**
 * SIGTERM to the group, SIGKILL after the grace unless the whole group is gone
 * by then, then wait (bounded) until no process of the group is left, so the
 * caller can rely on it.
 */
async function killGroup(pgid: number, graceMs: number, leaderExited: () => boolean, notes: string[]): Promise<void> {
  const { sigkill, survivors } = await stopProcessGroup(pgid, graceMs, leaderExited);
  if (sigkill) notes.push(`SIGKILL sent to group ${pgid} ${formatSeconds(graceMs)} after SIGTERM`);
  if (survivors) notes.push(`processes of group ${pgid} survived SIGKILL`);
}

/**
 * SIGTERM to the group, SIGKILL after `graceMs` if any of it is left, then a
 * bounded wait until it is gone. `leaderExited` lets a caller that spawned the
 * leader also wait for its exit to be seen.
 */
export async function stopProcessGroup(pgid: number, graceMs: number, leaderExited: () => boolean = () => true): Promise<{ sigkill: boolean; survivors: boolean }> {
  killProcessGroup(pgid, 'SIGTERM');
  const deadline = performance.now() + graceMs;
  while (performance.now() < deadline) {
    if (!groupHasLiveMembers(pgid) && leaderExited()) break;
    await sleep(Math.min(50, Math.max(1, deadline - performance.now())));
  }
  const sigkill = groupHasLiveMembers(pgid);
  if (sigkill) killProcessGroup(pgid, 'SIGKILL');
  // Orphans that died are zombies until init reaps them; kill(2) still finds
  // them. Wait for that too (bounded: some containers' init reaps slowly).
  const reapDeadline = performance.now() + REAP_WAIT_MS;
  while (groupExists(pgid) && performance.now() < reapDeadline) await sleep(20);
  return { sigkill, survivors: groupHasLiveMembers(pgid) };
}

/** Whether kill(2) finds any process in the group (zombies included). */
function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Whether any process of the group is alive (zombies do not count: they are only waiting to be reaped). */
export function groupHasLiveMembers(pgid: number): boolean {
  if (!groupExists(pgid)) return false;
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return true; // no /proc: trust kill(2)
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readProcStat(Number(entry));
    if (stat && stat.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X') return true;
  }
  return false;
}

/** The last `capacity` bytes pushed through it, in a fixed buffer. */
class TailBuffer {
  private readonly buf: Buffer;
  private start = 0;
  private length = 0;

  constructor(readonly capacity: number) {
    this.buf = Buffer.alloc(capacity);
  }

  push(chunk: Buffer): void {
    const cap = this.capacity;
    if (cap === 0) return;
    if (chunk.length >= cap) {
      chunk.copy(this.buf, 0, chunk.length - cap);
      this.start = 0;
      this.length = cap;
      return;
    }
    let write = (this.start + this.length) % cap;
    const first = Math.min(chunk.length, cap - write);
    chunk.copy(this.buf, write, 0, first);
    chunk.copy(this.buf, 0, first);
    write = (write + chunk.length) % cap;
    const newLength = this.length + chunk.length;
    if (newLength > cap) {
      this.start = write;
      this.length = cap;
    } else {
      this.length = newLength;
    }
  }

  toString(): string {
    const end = this.start + this.length;
    const bytes =
      end <= this.capacity
        ? this.buf.subarray(this.start, end)
        : Buffer.concat([this.buf.subarray(this.start), this.buf.subarray(0, end - this.capacity)]);
    // The cut may fall inside a UTF-8 sequence: drop its orphaned continuation bytes.
    let skip = 0;
    if (this.length === this.capacity) while (skip < 3 && skip < bytes.length && (bytes[skip]! & 0xc0) === 0x80) skip++;
    return bytes.subarray(skip).toString('utf8');
  }
}

/** Splits one stream into lines for the heartbeat, holding at most one (cut) line. */
class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';
  private cut = false;

  constructor(private readonly emit: (line: string) => void) {}

  push(chunk: Buffer): void {
    const text = this.decoder.write(chunk);
    let from = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', from)) {
      this.append(text.slice(from, nl));
      this.flush();
      from = nl + 1;
    }
    this.append(text.slice(from));
  }

  end(): void {
    this.append(this.decoder.end());
    if (this.partial !== '' || this.cut) this.flush();
  }

  private append(s: string): void {
    if (this.cut) return;
    const room = MAX_HEARTBEAT_LINE - this.partial.length;
    if (s.length > room) {
      this.partial += s.slice(0, room);
      this.cut = true;
    } else {
      this.partial += s;
    }
  }

  private flush(): void {
    const line = this.partial.endsWith('\r') ? this.partial.slice(0, -1) : this.partial;
    this.partial = '';
    const wasCut = this.cut;
    this.cut = false;
    this.emit(wasCut ? line + '…' : line);
  }
}
