/**
 * Streams that turn a compressed archive into a plain tar stream. gzip is
 * zlib in this process; bzip2 and xz are the system's `bzip2 -dc` and
 * `xz -dc` (node-tar reads neither), run in their own process group, fed and
 * drained as streams so an archive is never whole in memory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { Duplex, PassThrough } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Compression } from '../controlfile/sources.js';

import { FetchError } from './errors.js';

export interface Decompressor {
  stream: Duplex;
  /**
   * Settles when the decompressor has finished: for a child process, when it
   * exited, with a reason if it failed (the archive is corrupt or truncated).
   */
  finished: Promise<string | undefined>;
  /** Stops it early (kills the process group); safe to call more than once. */
  kill: () => void;
}

const TOOLS: Readonly<Record<'bzip2' | 'xz', { command: string; debianPackage: string }>> = {
  bzip2: { command: 'bzip2', debianPackage: 'bzip2' },
  xz: { command: 'xz', debianPackage: 'xz-utils' },
};

/** Keep the end of what a tool says on stderr, never more than this. */
const STDERR_LIMIT = 4096;

export async function findOnPath(command: string, path = process.env.PATH ?? ''): Promise<string | undefined> {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, command);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function childDecompressor(executable: string, name: string): Decompressor {
  // detached: its own process group, so a kill reaches anything it started.
  const child: ChildProcess = spawn(executable, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    stderr = (stderr + text).slice(-STDERR_LIMIT);
  });
  // A decompressor that dies early makes our writes fail with EPIPE; the exit
  // status below is the real story, so the pipe error is only a symptom.
  child.stdin?.on('error', () => {});
  let exited = false;
  const finished = new Promise<string | undefined>((resolve) => {
    child.on('error', (error) => {
      exited = true;
      resolve(`${name} could not be run: ${error.message}`);
    });
    child.on('close', (code, signal) => {
      exited = true;
      if (code === 0) resolve(undefined);
      else resolve(`${name} ${signal ? `was killed by ${signal}` : `exited with status ${code}`}${stderr.trim() ? `: ${stderr.trim().split('\n').join('; ')}` : ''}`);
    });
  });
  const kill = (): void => {
    if (exited || child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const stream = Duplex.from({ writable: child.stdin!, readable: child.stdout! });
  return { stream, finished, kill };
}

/** The decompressor for `compression`, or a FetchError naming the Debian package to install. */
export async function decompressorFor(compression: Compression | 'none', url: string): Promise<Decompressor> {
  if (compression === 'none') return { stream: new PassThrough(), finished: Promise.resolve(undefined), kill: () => {} };
  if (compression === 'gzip') return { stream: createGunzip(), finished: Promise.resolve(undefined), kill: () => {} };
  const tool = TOOLS[compression];
  const executable = await findOnPath(tool.command);
  if (!executable) {
    throw new FetchError(
      url,
      `${tool.command} is not installed, and it is needed to unpack a .tar.${compression === 'bzip2' ? 'bz2' : 'xz'} archive`,
      `install Debian's ${tool.debianPackage} package (apt-get install ${tool.debianPackage})`,
    );
  }
  return childDecompressor(executable, tool.command);
}
