/**
 * Appending whole records to a file so that neither a crash nor a kill leaves
 * half of one behind, and a reader never sees half of one.
 *
 * Every record goes out as ONE write(2) of a complete buffer on a descriptor
 * opened with O_APPEND (Node's `fs.writeSync` on a Buffer is a single write(2)
 * call; libuv only loops when the kernel reports a short write). O_APPEND
 * makes the kernel pick the end of the file and write there atomically with
 * respect to other appenders. Then the data is flushed with fdatasync(2) (or
 * fsync(2)) unless told otherwise, so a record that was acknowledged survives
 * a power cut too.
 *
 * Limits, stated honestly: a regular-file write(2) copies page by page, and
 * Linux lets a fatal signal (SIGKILL) stop it between pages, so a record that
 * straddles a page boundary can in principle be cut by a SIGKILL that lands
 * inside the system call (a window of well under a microsecond); a full disk
 * can also cut one (ENOSPC). We deal with the second ourselves (the partial
 * record is truncated away before the error is thrown) and the resume logic
 * of StatusLogWriter deals with the first (a tail without its newline is
 * truncated away when the file is reopened).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export type SyncMode = 'fdatasync' | 'fsync' | 'none';

export interface OpenedAppend {
  fd: number;
  /** True if this call created the file. */
  created: boolean;
}

/** Open `file` for appending (O_WRONLY|O_APPEND|O_CREAT, mode 0666 & ~umask, like Python's open(f, 'a')). */
export function openAppend(file: string, sync: SyncMode): OpenedAppend {
  const { O_WRONLY, O_APPEND, O_CREAT, O_EXCL } = fs.constants;
  let fd: number;
  let created = false;
  try {
    fd = fs.openSync(file, O_WRONLY | O_APPEND | O_CREAT | O_EXCL, 0o666);
    created = true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    fd = fs.openSync(file, O_WRONLY | O_APPEND, 0o666);
  }
  if (created && sync !== 'none') syncDirectoryOf(file);
  return { fd, created };
}

/** Make a new directory entry durable (fsync the directory that holds it). */
export function syncDirectoryOf(file: string): void {
  let dfd: number | undefined;
  try {
    dfd = fs.openSync(path.dirname(path.resolve(file)), fs.constants.O_RDONLY);
    fs.fsyncSync(dfd);
  } catch {
    // Some filesystems refuse fsync on directories; the data itself is still synced.
  } finally {
    if (dfd !== undefined) fs.closeSync(dfd);
  }
}

export function syncFd(fd: number, sync: SyncMode): void {
  if (sync === 'fdatasync') fs.fdatasyncSync(fd);
  else if (sync === 'fsync') fs.fsyncSync(fd);
}

/**
 * Append `buf` with one write(2) (more only if the kernel writes short), then
 * sync. If writing fails part-way, the part that was written is truncated
 * away again (this assumes we are the file's only writer) and the error is
 * rethrown, so the file never keeps a partial record we know about.
 */
export function appendRecord(fd: number, buf: Uint8Array, sync: SyncMode): void {
  let off = 0;
  try {
    while (off < buf.length) {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    }
  } catch (e) {
    if (off > 0) {
      try {
        const size = fs.fstatSync(fd).size;
        fs.ftruncateSync(fd, size - off);
      } catch {
        // Nothing more we can do; the reader-side repair will cope.
      }
    }
    throw e;
  }
  syncFd(fd, sync);
}

/** Open, append one record, sync, close. */
export function appendRecordToFile(file: string, buf: Uint8Array, sync: SyncMode): void {
  const { fd } = openAppend(file, sync);
  try {
    if (buf.length > 0) appendRecord(fd, buf, sync);
  } finally {
    fs.closeSync(fd);
  }
}
