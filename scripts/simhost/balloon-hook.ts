/**
 * The simulated balloon driver's way into a domain's processes: loaded with
 * `node --import` through NODE_OPTIONS, which the simulated host puts in
 * every domain's environment (balloonHookEnv in balloon.ts).
 *
 * Why a hook: a plain file cannot answer a write with EBADMSG, and the
 * alternatives need what the simulated host must not (FUSE needs root and a
 * mount; an LD_PRELOAD shim needs a compiler). The suite's code is unchanged:
 * it calls node:fs as it would on a real kernel, and these four functions
 * answer for the interface files under XENTEST_ROOT:
 *   openSync     the real open first (real permissions: a 0644 root file
 *                is EACCES to another user); a read-only sysfs file opened
 *                for writing is EACCES, as kernfs does
 *   writeSync    one write(2) to the driver: its errno, or its byte count
 *   closeSync    forgets the descriptor
 *   readFileSync renders the files at this instant first (the allocation
 *                moves between reads)
 * Everything else passes straight through.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { syncBuiltinESMExports } from 'node:module';
import { interfaceFile, renderBalloon, writeInterface } from './balloon.js';

const MESSAGES: Record<string, string> = {
  EPERM: 'operation not permitted',
  EBADMSG: 'bad message',
  EFBIG: 'file too large',
  EACCES: 'permission denied',
  EINVAL: 'invalid argument',
};

function fsError(code: string, syscall: string, file?: string): NodeJS.ErrnoException {
  const e = new Error(`${code}: ${MESSAGES[code] ?? code}, ${syscall}${file ? ` '${file}'` : ''}`) as NodeJS.ErrnoException;
  e.code = code;
  e.errno = -((os.constants.errno as Record<string, number>)[code] ?? 0);
  e.syscall = syscall;
  if (file) e.path = file;
  return e;
}

const CAP_SYS_ADMIN = 21n;

/** capable(CAP_SYS_ADMIN), or, on a host run by an ordinary user, that user standing in for root. */
function capableSysAdmin(file: string): boolean {
  const m = /^CapEff:\s+([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  if (m && (BigInt('0x' + m[1]) >> CAP_SYS_ADMIN) & 1n) return true;
  const uid = process.geteuid?.() ?? 0;
  return uid !== 0 && fs.statSync(file).uid === uid;
}

function isWriteFlags(flags: unknown): boolean {
  if (flags === undefined) return false;
  if (typeof flags === 'number') return (flags & 3) !== fs.constants.O_RDONLY;
  return typeof flags === 'string' && /[wa+]/.test(flags);
}

function install(root: string): void {
  const real = { openSync: fs.openSync, writeSync: fs.writeSync, closeSync: fs.closeSync, readFileSync: fs.readFileSync };
  const absRoot = path.resolve(root);
  const prefix = absRoot.endsWith(path.sep) ? absRoot : absRoot + path.sep;
  const open = new Map<number, { rel: string; file: string }>();
  // While the driver itself reads and writes its files, nothing is intercepted.
  let inDriver = false;
  const driver = <T>(f: () => T): T => {
    inDriver = true;
    try {
      return f();
    } finally {
      inDriver = false;
    }
  };
  const ours = (p: unknown): { rel: string; file: string; writable: boolean } | null => {
    if (inDriver || typeof p !== 'string') return null;
    const file = path.resolve(p);
    if (!file.startsWith(prefix)) return null;
    const i = interfaceFile(absRoot, file);
    return i ? { ...i, file } : null;
  };

  const patched = fs as unknown as Record<string, unknown>;
  patched.openSync = function openSync(p: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode): number {
    const i = ours(p);
    const fd = (real.openSync as (...a: unknown[]) => number)(p, flags, mode);
    if (!i || !isWriteFlags(flags)) return fd;
    if (!i.writable) {
      real.closeSync(fd);
      throw fsError('EACCES', 'open', String(p));
    }
    open.set(fd, { rel: i.rel, file: i.file });
    return fd;
  };
  patched.writeSync = function writeSync(fd: number, buffer: unknown, ...rest: unknown[]): number {
    const o = inDriver ? undefined : open.get(fd);
    if (!o) return (real.writeSync as (...a: unknown[]) => number)(fd, buffer, ...rest);
    let bytes: Uint8Array;
    if (typeof buffer === 'string') bytes = Buffer.from(buffer, typeof rest[1] === 'string' ? (rest[1] as BufferEncoding) : 'utf8');
    else {
      const b = buffer as Uint8Array;
      const offset = typeof rest[0] === 'number' ? rest[0] : 0;
      const length = typeof rest[1] === 'number' ? rest[1] : b.byteLength - offset;
      bytes = b.subarray(offset, offset + length);
    }
    const capable = capableSysAdmin(o.file);
    const answer = driver(() => writeInterface(absRoot, o.rel, bytes, capable));
    if ('errno' in answer) throw fsError(answer.errno, 'write');
    return answer.written;
  };
  patched.closeSync = function closeSync(fd: number): void {
    open.delete(fd);
    real.closeSync(fd);
  };
  patched.readFileSync = function readFileSync(p: unknown, ...rest: unknown[]): unknown {
    if (ours(p)) driver(() => renderBalloon(absRoot));
    return (real.readFileSync as (...a: unknown[]) => unknown)(p, ...rest);
  };
  syncBuiltinESMExports();
}

if (process.env.XENTEST_ROOT) install(process.env.XENTEST_ROOT);
