/**
 * Directory sources: a tree already on this machine, copied as it is
 * (symbolic links stay links, modes and mtimes kept) and identified by a
 * digest of its content.
 *
 * The identity is sha256 over, for every entry in sorted order, its relative
 * path, type, mode, and its content's sha256 (files) or target (links). Mtimes
 * and owners are not in it: touching a file does not change the tree.
 * Anything under a `.git` is copied but left out of the identity, because git
 * rewrites its index and logs on a mere `git status`, which would make an
 * unchanged checkout look changed every night.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, type Stats } from 'node:fs';
import { chmod, lstat, lutimes, mkdir, readdir, readlink, stat, symlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { FetchError } from './errors.js';
import { formatBytes, type ResolvedOptions } from './options.js';

export interface DirectoryCopy {
  identity: string;
  files: number;
  bytes: number;
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'a special file';
}

async function fileDigest(src: string, dst: string | undefined, signal: AbortSignal | undefined): Promise<string> {
  const hash = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  const input = createReadStream(src);
  const options = signal ? { signal } : {};
  if (dst === undefined) {
    await pipeline(input, tap, async function* drain(source: AsyncIterable<Buffer>) {
      for await (const _chunk of source) {
        // hashed by the tap
      }
    }, options);
  } else {
    await pipeline(input, tap, createWriteStream(dst, { flags: 'wx', mode: 0o600 }), options);
  }
  return hash.digest('hex');
}

async function checkRoot(root: string): Promise<Stats> {
  let st: Stats;
  try {
    st = await stat(root);
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new FetchError(
      root,
      code === 'ENOENT' ? 'no such directory' : `cannot read the directory: ${(error as Error).message}`,
      'check the path in the control file, and that the directory exists on this machine and is readable',
      { cause: error },
    );
  }
  if (!st.isDirectory()) throw new FetchError(root, 'not a directory', 'a path source must name a directory holding the tree');
  return st;
}

/**
 * Walks `root` in sorted order, hashing, and copying into `into` when given
 * (an existing empty directory).
 */
async function walk(root: string, into: string | undefined, o: ResolvedOptions): Promise<DirectoryCopy> {
  const rootStat = await checkRoot(root);
  const identity = createHash('sha256');
  let files = 0;
  let bytes = 0;
  const record = (fields: readonly (string | number)[]): void => {
    identity.update(JSON.stringify(fields) + '\n');
  };
  const fail = (rel: string, error: unknown): never => {
    if (error instanceof FetchError) throw error;
    if (o.signal?.aborted) throw o.signal.reason;
    throw new FetchError(root, `cannot copy ${rel}: ${(error as Error).message}`, 'check the permissions of the source directory and the free space where the tree goes', { cause: error });
  };

  const visit = async (rel: string, inGit: boolean): Promise<void> => {
    const srcDir = join(root, rel);
    const names = (await readdir(srcDir).catch((e: unknown) => fail(rel || '.', e))).sort();
    for (const name of names) {
      o.signal?.throwIfAborted();
      const path = rel ? `${rel}/${name}` : name;
      const src = join(root, path);
      const dst = into === undefined ? undefined : join(into, path);
      const hidden = inGit || name === '.git';
      try {
        const st = await lstat(src);
        const mode = st.mode & 0o7777;
        if (st.isDirectory()) {
          if (!hidden) record(['d', path, mode.toString(8)]);
          // Writable by us until its children are in; its own mode and mtime go on last.
          if (dst !== undefined) await mkdir(dst, { mode: 0o700 });
          await visit(path, hidden);
          if (dst !== undefined) {
            await chmod(dst, mode);
            await utimes(dst, st.atime, st.mtime);
          }
        } else if (st.isFile()) {
          bytes += st.size;
          if (bytes > o.maxBytes) {
            throw new FetchError(root, `the directory holds more than the limit of ${formatBytes(o.maxBytes)}`, 'check that the path names the tree you meant, or raise the size limit (maxBytes)');
          }
          files++;
          const digest = await fileDigest(src, dst, o.signal);
          if (!hidden) record(['f', path, mode.toString(8), digest]);
          if (dst !== undefined) {
            await chmod(dst, mode);
            await utimes(dst, st.atime, st.mtime);
          }
        } else if (st.isSymbolicLink()) {
          const target = await readlink(src);
          if (!hidden) record(['l', path, target]);
          if (dst !== undefined) {
            await symlink(target, dst);
            await lutimes(dst, st.atime, st.mtime);
          }
        } else {
          throw new FetchError(root, `${path} is ${kindOf(st)}, which a source tree has no business holding`, 'remove it from the directory');
        }
      } catch (error) {
        fail(path, error);
      }
    }
  };

  await visit('', false);
  if (into !== undefined) {
    await chmod(into, rootStat.mode & 0o7777);
    await utimes(into, rootStat.atime, rootStat.mtime);
  }
  return { identity: `tree:${identity.digest('hex')}`, files, bytes };
}

export async function directoryIdentity(root: string, o: ResolvedOptions): Promise<string> {
  return (await walk(root, undefined, o)).identity;
}

export async function copyDirectory(root: string, into: string, o: ResolvedOptions): Promise<DirectoryCopy> {
  return walk(root, into, o);
}
