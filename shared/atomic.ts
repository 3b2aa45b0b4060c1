/**
 * Replace a file so that a crash or power cut at any moment leaves either the
 * old content or the new, never a mix: write a temporary file beside it,
 * fsync it, rename it over the old one, fsync the directory.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

export function writeFileAtomic(path: string, content: string | Uint8Array, options: { createDir?: boolean } = {}): void {
  const dir = dirname(path);
  // createDir: false where creating the directory could do harm (a shared mount that is momentarily away).
  if (options.createDir ?? true) mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w', 0o644);
  try {
    const buf = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  syncDirectory(dir);
}

/** fsync a directory (so a rename in it is durable); filesystems that cannot (some NFS servers) are let be. */
export function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EISDIR') throw e;
  } finally {
    closeSync(fd);
  }
}
