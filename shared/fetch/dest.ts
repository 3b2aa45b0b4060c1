/**
 * Replacing the destination directory so that it either holds a whole new
 * tree or does not exist: the old one is removed first, the new one is built
 * in a temp sibling (same filesystem) and renamed into place only when
 * complete. A crash leaves at most a temp sibling, which the next fetch to the
 * same dest removes.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const PARTIAL = '.xentest-partial-';

function partialPrefix(dest: string): string {
  return `.${basename(dest)}${PARTIAL}`;
}

async function removeTree(path: string): Promise<void> {
  // After a refused entry, node-tar may still be finishing an entry it had
  // started (a directory, a symbolic link) while we remove the temp tree, so rm
  // can meet a directory that just gained a child (ENOTEMPTY): it retries.
  // Nothing can recreate the temp tree itself once it is gone, because node-tar
  // never creates its target directory, only what is under it.
  await rm(path, { recursive: true, force: true, maxRetries: 10, retryDelay: 20 });
}

/** Builds a new tree for `dest` with `fill(tmp)` and renames it into place. */
export async function replaceDirectory<T>(dest: string, fill: (tmp: string) => Promise<T>): Promise<T> {
  const parent = dirname(dest);
  await removeTree(dest);
  await mkdir(parent, { recursive: true });
  const prefix = partialPrefix(dest);
  for (const name of await readdir(parent)) {
    if (name.startsWith(prefix)) await removeTree(join(parent, name));
  }
  const tmp = join(parent, `${prefix}${process.pid}-${randomBytes(6).toString('hex')}`);
  await mkdir(tmp, { mode: 0o700 });
  await chmod(tmp, 0o755);
  try {
    const result = await fill(tmp);
    await rename(tmp, dest);
    return result;
  } catch (error) {
    await removeTree(tmp);
    throw error;
  }
}
