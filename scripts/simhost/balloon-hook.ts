/**
 * The simulated balloon driver's way into a domain's processes: loaded with
 * `node --import` through NODE_OPTIONS, which the simulated host puts in
 * every domain's environment (balloonHookEnv in balloon.ts), so every Node
 * process of the domain, and every one those start, has it.
 *
 * Why a hook: a plain file cannot answer a write(2) with an errno (EBADMSG,
 * EFBIG, EPERM), nor give a value that changes between two reads without
 * anyone writing it. The usual ways to make files that can (FUSE, a
 * kernel module) need root and a mount, and the simulated host must run as
 * an ordinary user too; an LD_PRELOAD shim would need a compiler and does
 * not see through Node's libuv calls any better. The suite's code is
 * unchanged: it calls node:fs as it would on a real kernel, and these four
 * functions answer for the interface files under this process's
 * XENTEST_ROOT (the same function objects are patched on the fs module and,
 * by syncBuiltinESMExports, on `import { ... } from 'node:fs'`):
 *   openSync     for writing: the real open first (without O_TRUNC or
 *                O_CREAT, so real permissions apply: a 0644 root file is
 *                EACCES to another user), then a read-only sysfs file is
 *                EACCES, as kernfs refuses a file without a store
 *   writeSync    one write(2) to the driver (balloon.ts writeInterface):
 *                its errno as a Node fs error, or its byte count
 *   closeSync    forgets the descriptor, closes it
 *   readFileSync the file as the driver shows it at this instant (after the
 *                real read, so a missing or unreadable file fails as it is)
 * Any other path, call or descriptor goes to the real fs untouched; a path
 * is checked with one startsWith on a clean absolute string.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { syncBuiltinESMExports } from 'node:module';
import { fileURLToPath } from 'node:url';
import { balloonFileText, interfaceFile, MEMINFO_FILE, renderBalloon, writeInterface } from './balloon.js';

// libuv's uv_strerror wording, which Node's fs errors carry.
const MESSAGES: Record<string, string> = {
  EPERM: 'operation not permitted',
  EBADMSG: 'bad message',
  EFBIG: 'file too large',
  EACCES: 'permission denied',
  EINVAL: 'invalid argument',
  ERANGE: 'result too large',
  ENODEV: 'no such device',
};

/** An error as Node's fs gives one: "EBADMSG: bad message, write", code, negative errno, syscall (and path for open). */
function fsError(code: string, syscall: string, file?: string): NodeJS.ErrnoException {
  const e = new Error(`${code}: ${MESSAGES[code] ?? code}, ${syscall}${file !== undefined ? ` '${file}'` : ''}`) as NodeJS.ErrnoException;
  e.errno = -((os.constants.errno as Record<string, number>)[code] ?? 0);
  e.code = code;
  e.syscall = syscall;
  if (file !== undefined) e.path = file;
  return e;
}

const O = fs.constants;
/** Node's string flags (lib/internal/fs/utils.js stringToFlags). */
const STRING_FLAGS: Record<string, number> = {
  r: O.O_RDONLY,
  rs: O.O_RDONLY | O.O_SYNC,
  sr: O.O_RDONLY | O.O_SYNC,
  'r+': O.O_RDWR,
  'rs+': O.O_RDWR | O.O_SYNC,
  'sr+': O.O_RDWR | O.O_SYNC,
  w: O.O_TRUNC | O.O_CREAT | O.O_WRONLY,
  wx: O.O_TRUNC | O.O_CREAT | O.O_WRONLY | O.O_EXCL,
  xw: O.O_TRUNC | O.O_CREAT | O.O_WRONLY | O.O_EXCL,
  'w+': O.O_TRUNC | O.O_CREAT | O.O_RDWR,
  'wx+': O.O_TRUNC | O.O_CREAT | O.O_RDWR | O.O_EXCL,
  'xw+': O.O_TRUNC | O.O_CREAT | O.O_RDWR | O.O_EXCL,
  a: O.O_APPEND | O.O_CREAT | O.O_WRONLY,
  ax: O.O_APPEND | O.O_CREAT | O.O_WRONLY | O.O_EXCL,
  xa: O.O_APPEND | O.O_CREAT | O.O_WRONLY | O.O_EXCL,
  as: O.O_APPEND | O.O_CREAT | O.O_WRONLY | O.O_SYNC,
  sa: O.O_APPEND | O.O_CREAT | O.O_WRONLY | O.O_SYNC,
  'a+': O.O_APPEND | O.O_CREAT | O.O_RDWR,
  'ax+': O.O_APPEND | O.O_CREAT | O.O_RDWR | O.O_EXCL,
  'xa+': O.O_APPEND | O.O_CREAT | O.O_RDWR | O.O_EXCL,
  'as+': O.O_APPEND | O.O_CREAT | O.O_RDWR | O.O_SYNC,
  'sa+': O.O_APPEND | O.O_CREAT | O.O_RDWR | O.O_SYNC,
};

const CAP_SYS_ADMIN = 21n;

/**
 * capable(CAP_SYS_ADMIN): the effective set has it; or, on a host run by
 * an ordinary user, that user (who owns the files) stands in for root.
 */
function capableSysAdmin(real: typeof fs, fd: number): boolean {
  const m = /^CapEff:\s+([0-9a-f]+)$/m.exec(real.readFileSync('/proc/self/status', 'utf8') as string);
  if (m && (BigInt('0x' + m[1]) >> CAP_SYS_ADMIN) & 1n) return true;
  const uid = process.geteuid?.() ?? 0;
  return uid !== 0 && real.fstatSync(fd).uid === uid;
}

/** The bytes one writeSync call hands to write(2), or null for arguments Node itself would refuse. */
function writeBytes(buffer: unknown, rest: unknown[]): Uint8Array | null {
  if (typeof buffer === 'string') return Buffer.from(buffer, typeof rest[1] === 'string' ? (rest[1] as BufferEncoding) : 'utf8');
  if (!ArrayBuffer.isView(buffer)) return null;
  const all = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  let offset: unknown = rest[0];
  let length: unknown = rest[1];
  if (typeof rest[0] === 'object' && rest[0] !== null) ({ offset, length } = rest[0] as { offset?: number; length?: number });
  const off = offset ?? 0;
  if (typeof off !== 'number' || !Number.isInteger(off) || off < 0 || off > all.length) return null;
  const len = length ?? all.length - off;
  if (typeof len !== 'number' || !Number.isInteger(len) || len < 0 || off + len > all.length) return null;
  return all.subarray(off, off + len);
}

function install(rootFromEnv: string): void {
  const real = { ...fs } as typeof fs;
  const root = path.resolve(rootFromEnv);
  const prefix = root.endsWith(path.sep) ? root : root + path.sep;
  const open = new Map<number, string>();
  let renderedAt = 0;

  /** The absolute path when p names something under the root; else null, at the cost of a startsWith. */
  const under = (p: unknown): string | null => {
    let s: string;
    if (typeof p === 'string') s = p;
    else if (p instanceof URL) {
      if (p.protocol !== 'file:') return null;
      s = fileURLToPath(p);
    } else if (Buffer.isBuffer(p)) s = p.toString();
    else return null;
    const clean = s.startsWith('/') && !s.includes('/.') && !s.includes('//');
    if (clean) return s.startsWith(prefix) ? s : null;
    const abs = path.resolve(s);
    return abs.startsWith(prefix) ? abs : null;
  };

  const patched = fs as unknown as Record<string, unknown>;

  patched.openSync = function openSync(p: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode): number {
    const file = under(p);
    const i = file === null ? null : interfaceFile(root, file);
    const n = flags === undefined || flags === null ? O.O_RDONLY : typeof flags === 'number' ? flags : STRING_FLAGS[flags];
    if (!i || n === undefined || (n & 3) === O.O_RDONLY) return (real.openSync as (...a: unknown[]) => number)(p, flags, mode);
    // A sysfs or proc file is neither truncated nor created by open: the open only checks permissions.
    const fd = real.openSync(p, n & ~O.O_TRUNC & ~(n & O.O_EXCL ? 0 : O.O_CREAT), mode);
    if (!i.writable) {
      real.closeSync(fd);
      throw fsError('EACCES', 'open', String(p));
    }
    open.set(fd, i.rel);
    return fd;
  };

  patched.writeSync = function writeSync(fd: number, buffer: unknown, ...rest: unknown[]): number {
    const rel = open.get(fd);
    const bytes = rel === undefined ? null : writeBytes(buffer, rest);
    if (rel === undefined || bytes === null) return (real.writeSync as (...a: unknown[]) => number)(fd, buffer, ...rest);
    const answer = writeInterface(root, rel, bytes, capableSysAdmin(real, fd));
    if ('errno' in answer) throw fsError(answer.errno, 'write');
    return answer.written;
  };

  patched.closeSync = function closeSync(fd: number): void {
    open.delete(fd);
    real.closeSync(fd);
  };

  patched.readFileSync = function readFileSync(p: fs.PathOrFileDescriptor, options?: unknown): string | Buffer {
    const file = typeof p === 'number' ? null : under(p);
    const rel = file === null ? null : path.relative(root, file);
    const ours = rel !== null && (rel === MEMINFO_FILE || interfaceFile(root, file as string) !== null);
    const got = (real.readFileSync as (p: unknown, o?: unknown) => string | Buffer)(p, options);
    if (!ours) return got;
    const text = balloonFileText(root, rel as string);
    if (text === null) return got;
    // The files on disk follow too, for readers without the hook (a shell's cat), at most every 200 ms.
    if (Date.now() - renderedAt > 200) {
      renderedAt = Date.now();
      renderBalloon(root);
    }
    const encoding = (typeof options === 'string' ? options : (options as { encoding?: string } | undefined)?.encoding) as BufferEncoding | undefined;
    return typeof got === 'string' ? Buffer.from(text).toString(encoding ?? 'utf8') : Buffer.from(text);
  };

  syncBuiltinESMExports();
}

if (process.env.XENTEST_ROOT) install(process.env.XENTEST_ROOT);
