/**
 * Unpacking a tar stream into a directory with node-tar, safely: every entry
 * passes the EntryGuard before node-tar sees it (node-tar's own defences stay
 * on behind it, in strict mode, so any warning it raises fails the unpack),
 * the uncompressed stream is capped at maxBytes (a decompression bomb stops
 * there), and a truncated or corrupt archive is said to be one.
 *
 *   input -> sha256 tap -> decompressor -> size cap / stall watchdog -> node-tar Unpack
 *
 * The caller unpacks into an empty temp directory and removes it on failure.
 */
import { createHash } from 'node:crypto';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Unpack, type ReadEntry } from 'tar';
import type { Compression } from '../controlfile/sources.js';

import { decompressorFor, type Decompressor } from './decompress.js';
import { EntryGuard } from './entry-guard.js';
import { FetchError } from './errors.js';
import { formatBytes } from './options.js';
import { formatDuration } from './retry.js';

export interface ExtractRequest {
  /** What the archive is, for errors. */
  url: string;
  input: Readable;
  compression: Compression | 'none';
  /** An empty directory that exists. */
  into: string;
  /** Cap on the uncompressed tar stream (the tree's contents plus 512 bytes of header per entry). */
  maxBytes: number;
  /** The unpack fails if no bytes come out of the decompressor for this long. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Hint for a corrupt archive (for a cached download: where to delete it). */
  corruptHint?: string;
}

export interface ExtractResult {
  entries: number;
  /** Bytes of file content unpacked. */
  bytes: number;
  /** sha256 of the input as read, so the caller can check it is the archive it meant. */
  inputSha256: string;
}

/** node-tar's errors carry these. */
interface TarError extends Error {
  tarCode?: string;
  code?: string;
  entry?: { path?: string };
}

const CORRUPT_CODES = new Set(['TAR_BAD_ARCHIVE', 'TAR_ENTRY_INVALID', 'TAR_ABORT']);

/**
 * node-tar's Unpack as a Node Writable, so it can end a stream pipeline: the
 * pipeline finishes only when every file is written and closed, and fails
 * with the first error Unpack reports.
 */
class UnpackSink extends Writable {
  private failure: Error | undefined;
  private waiting: ((error?: Error | null) => void) | undefined;
  private sawEnd = false;

  constructor(private readonly unpack: Unpack) {
    super();
    unpack.on('error', (error: Error) => {
      this.failure ??= error;
      this.release();
    });
    // Bytes after the end-of-archive blocks are ignored (as GNU tar does)
    // rather than handed to a parser that would buffer them.
    unpack.on('eof', () => {
      this.sawEnd = true;
    });
  }

  get error(): Error | undefined {
    return this.failure;
  }

  private release(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.(this.failure ?? null);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.failure) return callback(this.failure);
    if (this.sawEnd) return callback();
    const flowing = this.unpack.write(chunk);
    if (this.failure) return callback(this.failure);
    if (flowing) return callback();
    this.waiting = callback;
    this.unpack.once('drain', () => this.release());
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.failure) return callback(this.failure);
    this.waiting = callback;
    this.unpack.once('close', () => this.release());
    this.unpack.end();
  }
}

const corruptArchiveErrors = new WeakSet<FetchError>();

/** Whether `error` says the tar stream itself was damaged (as opposed to refused, too big, or unwritable). */
export function isCorruptArchiveError(error: unknown): boolean {
  return error instanceof FetchError && corruptArchiveErrors.has(error);
}

function corrupt(url: string, detail: string, hint: string | undefined, cause?: unknown): FetchError {
  const error = new FetchError(url, `the archive is truncated or corrupt (${detail})`, hint ?? 'get the archive again from its source; if it is damaged there, fix it there', cause === undefined ? undefined : { cause });
  corruptArchiveErrors.add(error);
  return error;
}

export async function extractArchive(req: ExtractRequest): Promise<ExtractResult> {
  const guard = new EntryGuard(req.maxBytes);
  let refusal: FetchError | undefined;
  const unpackHint = 'do not use this archive: it tries to write outside its own tree, or holds things a source tree never does; get a clean one from a trusted source';

  const unpack: Unpack = new Unpack({
    cwd: req.into,
    // Every warning (a path node-tar would strip, a link it would refuse, a
    // checksum failure, truncation) is an error.
    strict: true,
    // Running as root must not hand the tree to the uids in the archive.
    preserveOwner: false,
    filter: (_path, entry) => {
      if (refusal) return false;
      const read = entry as ReadEntry;
      const why = guard.check({ path: read.path, type: read.type, linkpath: read.linkpath, size: read.size });
      if (why) {
        refusal = new FetchError(req.url, why, unpackHint);
        // Synchronously, so node-tar stops before the next header in this chunk.
        unpack.abort(refusal);
        return false;
      }
      // No setuid, setgid or sticky bits: as root they would be live.
      if (typeof read.mode === 'number') read.mode &= 0o777;
      return true;
    },
  });

  let decompressor: Decompressor;
  try {
    decompressor = await decompressorFor(req.compression, req.url);
  } catch (error) {
    req.input.destroy();
    throw error;
  }
  const hash = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
  });

  const controller = new AbortController();
  let stalled = false;
  let watchdog: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => {
      stalled = true;
      controller.abort();
    }, req.timeoutMs);
  };
  const onAbort = (): void => controller.abort(req.signal?.reason);
  req.signal?.addEventListener('abort', onAbort, { once: true });
  if (req.signal?.aborted) controller.abort(req.signal.reason);

  let streamed = 0;
  let overLimit: FetchError | undefined;
  const cap = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      arm();
      streamed += chunk.length;
      if (streamed > req.maxBytes) {
        overLimit = new FetchError(
          req.url,
          `the archive unpacks to more than the limit of ${formatBytes(req.maxBytes)} (a decompression bomb, or a tree bigger than the limit)`,
          'check that the URL names the archive you meant, or raise the size limit (maxBytes) if the tree really is that big',
        );
        callback(overLimit);
        return;
      }
      callback(null, chunk);
    },
  });
  const sink = new UnpackSink(unpack);

  arm();
  let failure: unknown;
  try {
    await pipeline(req.input, tap, decompressor.stream, cap, sink, { signal: controller.signal });
  } catch (error) {
    failure = error;
    decompressor.kill();
  } finally {
    clearTimeout(watchdog);
    req.signal?.removeEventListener('abort', onAbort);
  }
  const toolFailure = await decompressor.finished;

  if (refusal) throw refusal;
  if (req.signal?.aborted) throw req.signal.reason;
  if (overLimit) throw overLimit;
  if (stalled) {
    throw new FetchError(req.url, `unpacking made no progress for ${formatDuration(req.timeoutMs)}`, 'check that the disk is not full or hung, then try again');
  }
  if (failure === undefined && toolFailure === undefined) {
    return { entries: guard.entries, bytes: guard.bytes, inputSha256: hash.digest('hex') };
  }
  // The decompressor's own words are the best description of a damaged archive.
  if (toolFailure !== undefined) throw corrupt(req.url, toolFailure, req.corruptHint, failure);
  const error = (sink.error ?? failure) as TarError;
  const zlibCode = typeof error.code === 'string' && error.code.startsWith('Z_');
  if (zlibCode) throw corrupt(req.url, `gzip: ${error.message}`, req.corruptHint, error);
  if (error.tarCode && CORRUPT_CODES.has(error.tarCode)) throw corrupt(req.url, `tar: ${error.message.replace(/^TAR_\w+: /, '')}`, req.corruptHint, error);
  if (error.tarCode) {
    const where = error.entry?.path ? ` ${JSON.stringify(error.entry.path)}` : '';
    throw new FetchError(req.url, `cannot unpack entry${where}: ${error.message.replace(/^TAR_\w+: /, '')}`, `check the free space and permissions where the tree is unpacked (${req.into}), and that the archive is a plain source tarball`, { cause: error });
  }
  throw error;
}
