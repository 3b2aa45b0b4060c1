/**
 * One write(2) of exactly these bytes to an interface file, as this process
 * or as another identity. The files are written only through openSync,
 * writeSync and closeSync, so that a 1-byte write is one 1-byte write(2).
 */
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { captureOutput } from '../../shared/process/capture.js';
import type { Identity, WriteOutcome } from './interface.js';

export function writeOnce(path: string, bytes: Uint8Array): WriteOutcome {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY);
  } catch (e) {
    return failed(e, 'open');
  }
  try {
    return { ok: true, written: writeSync(fd, bytes, 0, bytes.length) };
  } catch (e) {
    return failed(e, 'write');
  } finally {
    closeSync(fd);
  }
}

function failed(e: unknown, at: 'open' | 'write'): WriteOutcome {
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.code !== 'string') throw e;
  return { ok: false, code: err.code, at, message: '' };
}

/** setpriv's options for each identity (util-linux; it needs root to switch). */
export function identityPrefix(as: Identity): string[] {
  switch (as) {
    case 'self':
      return [];
    case 'nobody':
      return ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
    case 'no-cap-sys-admin':
      return ['setpriv', '--inh-caps=-sys_admin', '--bounding-set=-sys_admin'];
  }
}

const WRITER = fileURLToPath(new URL('./writer.js', import.meta.url));

/** writeOnce in a child process of that identity (the environment, a simulated host's included, is inherited). */
export async function writeOnceAs(path: string, bytes: Uint8Array, as: Identity): Promise<WriteOutcome> {
  if (as === 'self') return writeOnce(path, bytes);
  const c = await captureOutput([...identityPrefix(as), process.execPath, WRITER, path, Buffer.from(bytes).toString('hex')], { timeoutMs: 30_000 });
  const line = c.output.split('\n').find((l) => l.startsWith('{"ok":'));
  try {
    if (line !== undefined) return JSON.parse(line) as WriteOutcome;
  } catch {
    // Not the writer's line after all: said below.
  }
  return { ok: false, code: `exit ${c.result.exitStatus ?? c.result.signal}`, at: 'command', message: `the writer as ${as} said: ${c.output.trim().slice(-300)}` };
}
