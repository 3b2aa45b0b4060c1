/**
 * Getting a tree (Xen, Linux, a test suite) into a directory, safely: a
 * tarball over http(s) or file:, a git repository, or a directory on this
 * machine. Downloads and clones are cached across nights; probeIdentity tells
 * a night cheaply whether the tree changed since the last one.
 */
import { createReadStream } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { basename, dirname, resolve, sep } from 'node:path';
import type { Source } from '../controlfile/sources.js';

import { replaceDirectory } from './dest.js';
import { copyDirectory, directoryIdentity } from './directory.js';
import { FetchError } from './errors.js';
import { extractArchive } from './extract.js';
import { exportCommit, resolveGitRevision } from './git.js';
import { formatBytes, resolveOptions, type FetchOptions, type ResolvedOptions } from './options.js';
import { archiveName, obtainArchive, sha256OfFile, type TarballSource } from './tarball-cache.js';

export { FetchError } from './errors.js';
export type { FetchOptions, FetchProgress } from './options.js';
export { terminalProgress } from './progress.js';

export interface FetchedTree {
  /** Where the tree now is (the dest directory passed in, made absolute). */
  dir: string;
  /** 'sha256:<hex of the archive bytes>', 'git:<commit sha>' or 'tree:<sha256 of the directory content>'. */
  identity: string;
  /** False when nothing was transferred (cache hit after revalidation, a local file, or git already had the commit). */
  downloaded: boolean;
  /** e.g. 'xen-4.17.tar.gz (cached, not modified)' or 'git https://... staging at 1a2b3c4'. */
  description: string;
}

function locationOf(source: Source): string {
  return source.kind === 'directory' ? source.path : source.url;
}

function isInside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith(sep) ? parent : parent + sep);
}

/** The real path of `path`, or of its nearest existing ancestor with the rest appended. */
async function realish(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    const parent = dirname(path);
    return parent === path ? path : resolve(await realish(parent), basename(path));
  }
}

/** Refuses a dest whose removal would take the cache or the source with it. */
async function checkDestination(source: Source, dest: string, o: ResolvedOptions): Promise<void> {
  const where = locationOf(source);
  const realDest = await realish(dest);
  if (dirname(realDest) === realDest) throw new FetchError(where, `the destination ${dest} is the root directory`, 'give a directory of its own for the tree');
  const cache = await realish(resolve(o.cacheDir));
  if (isInside(cache, realDest)) {
    throw new FetchError(where, `the destination ${dest} holds the cache directory ${o.cacheDir}, which replacing it would delete`, 'keep the cache directory outside the trees');
  }
  if (source.kind === 'directory') {
    const src = await realish(source.path);
    if (isInside(src, realDest) || isInside(realDest, src)) {
      throw new FetchError(where, `the destination ${dest} and the source directory overlap`, 'copy the tree to a directory outside the source (and not above it)');
    }
  }
}

async function tarballTree(source: TarballSource, dest: string, o: ResolvedOptions): Promise<FetchedTree> {
  const archive = await obtainArchive(source, o);
  const name = archiveName(source.url);
  const fromCache = archive.how !== 'local file';
  /** The archive on disk is no longer the one that was downloaded (or hashed a moment ago). */
  const changed = async (actual: string): Promise<FetchError> => {
    await archive.forget();
    return new FetchError(
      source.url,
      fromCache
        ? `the cached copy is damaged (its sha256 is now ${actual}, it was ${archive.sha256} when downloaded)`
        : `the file changed while it was being unpacked (sha256 ${archive.sha256} before, ${actual} while unpacking)`,
      fromCache ? 'it has been dropped from the cache: fetch again' : 'fetch again once whatever is rewriting the file has finished',
    );
  };
  const result = await replaceDirectory(dest, async (tmp) => {
    let unpacked;
    try {
      unpacked = await extractArchive({
        url: source.url,
        input: createReadStream(archive.path),
        compression: source.compression,
        into: tmp,
        maxBytes: o.maxBytes,
        timeoutMs: o.timeoutMs,
        ...(o.signal ? { signal: o.signal } : {}),
      });
    } catch (error) {
      // A corrupt archive as served stays an error about the archive; a cached
      // copy that rotted on disk is dropped, so the next fetch downloads it again.
      if (error instanceof FetchError && fromCache) {
        const actual = await sha256OfFile(archive.path).catch(() => 'unreadable');
        if (actual !== archive.sha256) throw await changed(actual);
      }
      throw error;
    }
    if (unpacked.inputSha256 !== archive.sha256) throw await changed(unpacked.inputSha256);
    return unpacked;
  });
  o.log(`${source.url}: unpacked ${result.entries} entries (${formatBytes(result.bytes)}) into ${dest}`);
  return { dir: dest, identity: `sha256:${archive.sha256}`, downloaded: archive.downloaded, description: `${name} (${archive.how})` };
}

async function gitTree(source: { url: string; ref?: string }, dest: string, o: ResolvedOptions): Promise<FetchedTree> {
  const revision = await resolveGitRevision(source, o);
  const result = await replaceDirectory(dest, (tmp) => exportCommit(source.url, revision, tmp, o));
  o.log(`${source.url}: checked out ${revision.sha.slice(0, 12)} (${result.entries} entries, ${formatBytes(result.bytes)}) into ${dest}`);
  return {
    dir: dest,
    identity: `git:${revision.sha}`,
    downloaded: revision.downloaded,
    description: `git ${source.url} ${source.ref ?? 'HEAD'} at ${revision.sha.slice(0, 7)}`,
  };
}

async function directoryTree(path: string, dest: string, o: ResolvedOptions): Promise<FetchedTree> {
  const copied = await replaceDirectory(dest, (tmp) => copyDirectory(path, tmp, o));
  o.log(`${path}: copied ${copied.files} files (${formatBytes(copied.bytes)}) into ${dest}`);
  return { dir: dest, identity: copied.identity, downloaded: false, description: `directory ${path} (${copied.identity.slice(0, 17)})` };
}

/**
 * Puts the tree `source` names at `dest`, replacing whatever was there. On
 * failure dest does not exist and nothing was left beside it.
 */
export async function fetchTree(source: Source, dest: string, options: FetchOptions): Promise<FetchedTree> {
  const o = resolveOptions(options);
  const target = resolve(dest);
  await checkDestination(source, target, o);
  switch (source.kind) {
    case 'tarball':
      return tarballTree(source, target, o);
    case 'git':
      return gitTree(source, target, o);
    case 'directory':
      return directoryTree(source.path, target, o);
  }
}

/**
 * The identity fetchTree would report, without unpacking: for a tarball the
 * cache is revalidated (or the file downloaded) and its sha256 returned; for
 * git the ref is resolved, fetching into the cached clone; for a directory
 * its content is hashed.
 */
export async function probeIdentity(source: Source, options: FetchOptions): Promise<{ identity: string; downloaded: boolean; description?: string }> {
  const o = resolveOptions(options);
  switch (source.kind) {
    case 'tarball': {
      const archive = await obtainArchive(source, o);
      // After a probe that downloaded, fetchTree finds the archive cached: this says how it really came.
      return { identity: `sha256:${archive.sha256}`, downloaded: archive.downloaded, description: `${archiveName(source.url)} (${archive.how})` };
    }
    case 'git': {
      const revision = await resolveGitRevision(source, o);
      return { identity: `git:${revision.sha}`, downloaded: revision.downloaded };
    }
    case 'directory':
      return { identity: await directoryIdentity(source.path, o), downloaded: false };
  }
}
