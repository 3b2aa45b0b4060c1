/**
 * Getting a tarball's bytes onto this machine: downloaded into the cache
 * (keyed by URL, revalidated with the saved ETag / Last-Modified) for http(s),
 * or used where it is for file:.
 *
 * Layout, one directory per URL: cacheDir/tarballs/<sha256(url)[:32]>/
 *   <sha256>.tar.gz   the archive, named by its content
 *   meta.json         url, file, sha256, size, etag, lastModified
 *   .part-*           a download in progress
 * A download goes to a .part file and is renamed to its content name only
 * when complete and (if pinned) matching its pin; meta.json is then replaced
 * atomically. A crash at any point leaves either the old meta pointing at the
 * old archive or the new meta pointing at the new one, never a half file.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Compression } from '../controlfile/sources.js';

import { FetchError } from './errors.js';
import { downloadOnce, type Validators } from './http.js';
import { serialized } from './lock.js';
import { formatBytes, type ResolvedOptions } from './options.js';
import { formatDuration, withRetries } from './retry.js';

export interface TarballSource {
  readonly url: string;
  readonly compression: Compression;
  readonly sha256?: string;
}

export interface LocalArchive {
  /** Where the archive's bytes are now. */
  path: string;
  sha256: string;
  size: number;
  /** Whether bytes came over the network this time. */
  downloaded: boolean;
  /** How we got it, for the description: "cached, not modified", "downloaded, 41 MiB", "local file". */
  how: string;
  /** Drops the cached copy (when it turned out to be damaged); a no-op for file: archives. */
  forget: () => Promise<void>;
}

interface CacheMeta {
  url: string;
  file: string;
  sha256: string;
  size: number;
  etag?: string;
  lastModified?: string;
  savedAt: string;
}

const SUFFIX: Readonly<Record<Compression, string>> = { gzip: '.tar.gz', bzip2: '.tar.bz2', xz: '.tar.xz' };
/** A .part file untouched this long belongs to a process that died. */
const STALE_PART_MS = 60 * 60 * 1000;

export function archiveName(url: string): string {
  try {
    return decodeURIComponent(basename(new URL(url).pathname)) || url;
  } catch {
    return url;
  }
}

export function urlKey(url: string): string {
  return createHash('sha256').update(url).digest('hex').slice(0, 32);
}

export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function wrongDigest(url: string, expected: string, actual: string): FetchError {
  return new FetchError(
    url,
    `sha256 mismatch: the control file pins ${expected} but the file's sha256 is ${actual}`,
    'if the file was legitimately replaced, update the #sha256= pin in the control file; otherwise the server (or something in between) is serving the wrong file, so do not use it',
  );
}

async function readMeta(dir: string, url: string): Promise<CacheMeta | undefined> {
  let meta: CacheMeta;
  try {
    meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as CacheMeta;
  } catch {
    return undefined;
  }
  if (meta.url !== url || typeof meta.file !== 'string' || !/^[0-9a-f]{64}\.tar\.(?:gz|bz2|xz)$/.test(meta.file) || meta.file.slice(0, 64) !== meta.sha256) return undefined;
  try {
    const st = await stat(join(dir, meta.file));
    if (!st.isFile() || st.size !== meta.size) return undefined;
  } catch {
    return undefined;
  }
  return meta;
}

async function writeMeta(dir: string, meta: CacheMeta): Promise<void> {
  const tmp = join(dir, `.meta-${randomBytes(6).toString('hex')}`);
  await writeFile(tmp, JSON.stringify(meta, null, 2) + '\n');
  await rename(tmp, join(dir, 'meta.json'));
}

/** Removes archives other than `keep`, and .part and .meta files left by dead processes. */
async function tidy(dir: string, keep: string | undefined): Promise<void> {
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    if (name.startsWith('.part-') || name.startsWith('.meta-')) {
      const st = await stat(path).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > STALE_PART_MS) await rm(path, { force: true });
    } else if (keep !== undefined && name !== keep && name !== 'meta.json' && !name.startsWith('.')) {
      await rm(path, { force: true });
    }
  }
}

async function localArchive(source: TarballSource, o: ResolvedOptions): Promise<LocalArchive> {
  let path: string;
  try {
    path = fileURLToPath(source.url);
  } catch (error) {
    throw new FetchError(source.url, `not a usable file: URL (${(error as Error).message})`, 'write it as file:///absolute/path/to/file.tar.gz');
  }
  const st = await stat(path).catch((error: unknown) => {
    const code = (error as { code?: string }).code;
    throw new FetchError(source.url, code === 'ENOENT' ? `no such file: ${path}` : `cannot read ${path}: ${(error as Error).message}`, 'check the path in the control file, and that the file exists on this machine');
  });
  if (!st.isFile()) throw new FetchError(source.url, `${path} is not a regular file`, 'point the URL at the tarball itself');
  if (st.size > o.maxBytes) {
    throw new FetchError(source.url, `the file is ${formatBytes(st.size)}, over the limit of ${formatBytes(o.maxBytes)}`, 'check that the URL names the file you meant, or raise the size limit (maxBytes)');
  }
  const sha256 = await sha256OfFile(path);
  if (source.sha256 && source.sha256 !== sha256) throw wrongDigest(source.url, source.sha256, sha256);
  return { path, sha256, size: st.size, downloaded: false, how: 'local file', forget: async () => {} };
}

async function cachedArchive(source: TarballSource, o: ResolvedOptions): Promise<LocalArchive> {
  const dir = join(o.cacheDir, 'tarballs', urlKey(source.url));
  return serialized(dir, async () => {
    await mkdir(dir, { recursive: true });
    await tidy(dir, undefined);
    const meta = await readMeta(dir, source.url);
    const forget = async (): Promise<void> => {
      await rm(join(dir, 'meta.json'), { force: true });
      await tidy(dir, 'meta.json');
    };

    // A pinned file cannot change, so a cached copy with the pinned digest is
    // current without asking the server (and a night works offline).
    if (meta && source.sha256 && meta.sha256 === source.sha256) {
      o.log(`${source.url}: cached copy matches the pinned sha256; not asking the server`);
      return { path: join(dir, meta.file), sha256: meta.sha256, size: meta.size, downloaded: false, how: 'cached, pinned sha256', forget };
    }

    const validators: Validators | undefined = meta
      ? { ...(meta.etag ? { etag: meta.etag } : {}), ...(meta.lastModified ? { lastModified: meta.lastModified } : {}) }
      : undefined;
    const conditional = validators && (validators.etag || validators.lastModified) ? validators : undefined;
    const tmpFile = join(dir, `.part-${process.pid}-${randomBytes(6).toString('hex')}`);
    const started = Date.now();
    try {
      const outcome = await withRetries(
        { url: source.url, retries: o.retries, baseDelayMs: o.retryDelayMs, maxDelayMs: Math.max(o.retryDelayMs, 30_000), log: o.log, ...(o.signal ? { signal: o.signal } : {}) },
        async () => {
          await rm(tmpFile, { force: true });
          return downloadOnce({
            url: source.url,
            ...(conditional ? { validators: conditional } : {}),
            tmpFile,
            maxBytes: o.maxBytes,
            timeoutMs: o.timeoutMs,
            ...(o.progress ? { progress: o.progress } : {}),
            ...(o.signal ? { signal: o.signal } : {}),
          });
        },
      );
      if (outcome.kind === 'not-modified') {
        // Only a conditional request can be answered 304, and only a cached copy makes one.
        const current = meta as CacheMeta;
        o.log(`${source.url}: cached copy is current (304 Not Modified)`);
        if (source.sha256 && source.sha256 !== current.sha256) throw wrongDigest(source.url, source.sha256, current.sha256);
        return { path: join(dir, current.file), sha256: current.sha256, size: current.size, downloaded: false, how: 'cached, not modified', forget };
      }
      if (source.sha256 && source.sha256 !== outcome.sha256) throw wrongDigest(source.url, source.sha256, outcome.sha256);
      const file = `${outcome.sha256}${SUFFIX[source.compression]}`;
      await rename(tmpFile, join(dir, file));
      await writeMeta(dir, { url: source.url, file, sha256: outcome.sha256, size: outcome.size, ...outcome.validators, savedAt: new Date().toISOString() });
      await tidy(dir, file);
      o.log(`${source.url}: downloaded ${formatBytes(outcome.size)} in ${formatDuration(Date.now() - started)}${meta ? ' (it had changed)' : ''}`);
      return { path: join(dir, file), sha256: outcome.sha256, size: outcome.size, downloaded: true, how: `downloaded, ${formatBytes(outcome.size)}`, forget };
    } finally {
      await rm(tmpFile, { force: true });
    }
  });
}

/** The archive's bytes on this machine and their sha256, downloading or revalidating as needed. */
export async function obtainArchive(source: TarballSource, o: ResolvedOptions): Promise<LocalArchive> {
  let scheme: string;
  try {
    scheme = new URL(source.url).protocol;
  } catch {
    throw new FetchError(source.url, 'not a valid URL', 'write it as http://host/path/file.tar.gz, https://... or file:///path/file.tar.gz');
  }
  if (scheme === 'file:') return localArchive(source, o);
  if (scheme === 'http:' || scheme === 'https:') return cachedArchive(source, o);
  throw new FetchError(source.url, `${scheme} is not a scheme a tarball can be fetched over`, 'use http://, https:// or file://');
}
