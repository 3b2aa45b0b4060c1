/**
 * One HTTP(S) download attempt into a file: conditional request, redirects,
 * size limit, stall timeout, digest while streaming, truncation detection.
 *
 * Why node:http/https and not Node's built-in fetch: fetch (undici) silently
 * decodes Content-Encoding, and servers that label a .tar.gz "Content-Encoding:
 * gzip" are common, so the bytes we hashed would not be the bytes of the file;
 * fetch also reports a body cut short, a reset and a refused connection as the
 * same "TypeError: fetch failed"/"terminated", where node:http gives the system
 * error code we need to tell a transient failure from a permanent one. A
 * socket-level idle timeout is exactly the "no bytes for this long" rule.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { FetchError, TransientFailure } from './errors.js';
import { formatBytes, type FetchProgress } from './options.js';
import { formatDuration } from './retry.js';

/** What a cached copy was served with, to ask the server whether it changed. */
export interface Validators {
  etag?: string;
  lastModified?: string;
}

export interface DownloadRequest {
  url: string;
  /** When given, the request is conditional and a 304 means the cached copy is current. */
  validators?: Validators;
  /** Written with O_EXCL; the caller renames it into place or removes it. */
  tmpFile: string;
  maxBytes: number;
  timeoutMs: number;
  progress?: (p: FetchProgress) => void;
  signal?: AbortSignal;
}

export type DownloadOutcome =
  | { kind: 'not-modified' }
  | { kind: 'downloaded'; sha256: string; size: number; validators: Validators };

const MAX_REDIRECTS = 10;

/** Network errors worth another try, with the words we say for them. */
const TRANSIENT_CODES: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ECONNABORTED: 'connection aborted',
  EPIPE: 'connection broken',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  EHOSTDOWN: 'host down',
  ENETUNREACH: 'network unreachable',
  ENETDOWN: 'network down',
  EAI_AGAIN: 'temporary failure looking up the host name',
};

interface AttemptState {
  stalled: boolean;
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function rethrowIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason;
}

function describeHost(url: URL): string {
  return url.port ? `${url.hostname}:${url.port}` : url.hostname;
}

/** A failure before any response arrived, as a transient failure or a FetchError. */
function classifyNetworkError(url: string, target: URL, error: unknown, state: AttemptState, timeoutMs: number): Error {
  if (error instanceof TransientFailure || error instanceof FetchError) return error;
  if (state.stalled) {
    return new TransientFailure(`no response from ${describeHost(target)} for ${formatDuration(timeoutMs)}`, 'the server or the network is slow or down; try again later');
  }
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  if (code !== undefined && code in TRANSIENT_CODES) {
    const hint =
      code === 'ECONNREFUSED'
        ? `nothing is listening at ${describeHost(target)}: check the host and port in the URL, and that the server is up`
        : 'the network or the server is having trouble; try again later';
    return new TransientFailure(`${TRANSIENT_CODES[code]} (${describeHost(target)})`, hint);
  }
  if (code === 'ENOTFOUND') {
    return new FetchError(url, `host ${target.hostname} not found`, "check the host name in the URL and this machine's DNS settings", { cause: error });
  }
  if (code !== undefined && (code.startsWith('ERR_TLS') || /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code))) {
    return new FetchError(url, `TLS failure talking to ${describeHost(target)}: ${message}`, "the server's certificate is not trusted here: fix the server, or install its CA certificate on this machine", { cause: error });
  }
  return new FetchError(url, `cannot download: ${message}`, 'check the URL and the network', { cause: error });
}

function retryAfterMs(header: string | undefined): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const when = Date.parse(header);
  return Number.isNaN(when) ? undefined : Math.max(0, when - Date.now());
}

/** A response that is neither a body, a 304, nor a redirect. */
function classifyStatus(url: string, res: http.IncomingMessage): Error {
  const status = res.statusCode ?? 0;
  const what = `HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`;
  if (status === 408 || status === 429 || status >= 500) {
    return new TransientFailure(`the server answered ${what}`, 'the server is failing or busy; try again later', retryAfterMs(res.headers['retry-after']));
  }
  if (status === 404 || status === 410) {
    return new FetchError(url, `the server answered ${what}: there is no file at this URL`, 'check the URL in the control file: the path or the file name is wrong, or the file was removed from the server');
  }
  if (status === 401 || status === 403) {
    return new FetchError(url, `the server answered ${what}: it will not give this file`, 'check the URL; the file may need credentials, which xentest does not send');
  }
  return new FetchError(url, `the server answered ${what}`, 'check the URL in the control file');
}

function sendRequest(url: string, target: URL, req: DownloadRequest, state: AttemptState): Promise<http.IncomingMessage> {
  const headers: http.OutgoingHttpHeaders = {
    'user-agent': 'xentest-fetch',
    // We want the file's own bytes, never a re-encoding of them.
    'accept-encoding': 'identity',
  };
  if (req.validators?.etag) headers['if-none-match'] = req.validators.etag;
  if (req.validators?.lastModified) headers['if-modified-since'] = req.validators.lastModified;
  const transport = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const request = transport.request(target, { method: 'GET', headers, ...(req.signal ? { signal: req.signal } : {}) }, resolve);
    // The socket's idle timeout covers connecting, waiting for headers and
    // every gap in the body: "no bytes for this long".
    request.setTimeout(req.timeoutMs, () => {
      state.stalled = true;
      request.destroy();
    });
    request.on('error', (error) => {
      if (req.signal?.aborted) reject(req.signal.reason);
      else reject(classifyNetworkError(url, target, error, state, req.timeoutMs));
    });
    request.end();
  });
}

function contentLength(res: http.IncomingMessage): number | undefined {
  const header = res.headers['content-length'];
  return header !== undefined && /^\d+$/.test(header) ? Number(header) : undefined;
}

async function receiveBody(url: string, res: http.IncomingMessage, req: DownloadRequest, state: AttemptState): Promise<DownloadOutcome> {
  const total = contentLength(res);
  if (total !== undefined && total > req.maxBytes) {
    res.destroy();
    throw new FetchError(url, `the file is ${formatBytes(total)}, over the limit of ${formatBytes(req.maxBytes)}`, 'check that the URL names the file you meant, or raise the size limit (maxBytes)');
  }
  const hash = createHash('sha256');
  let received = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      received += chunk.length;
      if (received > req.maxBytes) {
        callback(new FetchError(url, `the download passed the limit of ${formatBytes(req.maxBytes)} and was stopped`, 'check that the URL names the file you meant, or raise the size limit (maxBytes)'));
        return;
      }
      hash.update(chunk);
      req.progress?.({ url, receivedBytes: received, ...(total !== undefined ? { totalBytes: total } : {}), done: false });
      callback(null, chunk);
    },
  });
  const file = createWriteStream(req.tmpFile, { flags: 'wx', mode: 0o644 });
  try {
    await pipeline(res, meter, file);
  } catch (error) {
    // The file is opened asynchronously: a body that fails at once can fail before it is, and the
    // stream then creates it on its way to closing. Wait for that, so that the caller's clean-up
    // finds the file there to remove, not appearing after.
    if (!file.closed) await new Promise<void>((resolve) => file.once('close', () => resolve()));
    rethrowIfAborted(req.signal);
    if (error instanceof FetchError) throw error;
    const syscall = (error as { syscall?: unknown }).syscall;
    if (syscall === 'open' || syscall === 'write') {
      throw new FetchError(url, `cannot write the download to ${req.tmpFile}: ${(error as Error).message}`, 'check the free space and permissions of the cache directory', { cause: error });
    }
    if (state.stalled) {
      throw new TransientFailure(`the download stalled: no data for ${formatDuration(req.timeoutMs)} after ${received} of ${total ?? 'an unknown number of'} bytes`, 'the server or the network is slow or down; try again later');
    }
    throw truncated(received, total);
  }
  // A server that closes cleanly after sending less than it promised.
  if (total !== undefined && received !== total) throw truncated(received, total);
  req.progress?.({ url, receivedBytes: received, ...(total !== undefined ? { totalBytes: total } : {}), done: true });
  const etag = res.headers.etag;
  const lastModified = res.headers['last-modified'];
  return {
    kind: 'downloaded',
    sha256: hash.digest('hex'),
    size: received,
    validators: { ...(etag ? { etag } : {}), ...(lastModified ? { lastModified } : {}) },
  };
}

function truncated(received: number, total: number | undefined): TransientFailure {
  return new TransientFailure(
    total !== undefined
      ? `the download was truncated: the connection closed after ${received} of ${total} bytes`
      : `the download was truncated: the connection closed after ${received} bytes, before the server finished`,
    'the server or the network dropped the connection; try again later, and if it keeps happening check the server',
  );
}

/**
 * Downloads `req.url` into `req.tmpFile` once (following redirects), or learns
 * from a 304 that the cached copy is current. Throws TransientFailure for what
 * a retry may fix and FetchError for what it will not.
 */
export async function downloadOnce(req: DownloadRequest): Promise<DownloadOutcome> {
  let target = new URL(req.url);
  for (let hop = 0; ; hop++) {
    const state: AttemptState = { stalled: false };
    const res = await sendRequest(req.url, target, req, state);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && status !== 304) {
      res.resume();
      const location = res.headers.location;
      if (!location) throw new FetchError(req.url, `the server answered HTTP ${status} without saying where to go`, 'check the URL, or fix the server');
      if (hop >= MAX_REDIRECTS) throw new FetchError(req.url, `more than ${MAX_REDIRECTS} redirects`, 'check the URL; the server redirects in a loop');
      const next = new URL(location, target);
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        throw new FetchError(req.url, `the server redirects to ${next.href}, which is not http or https`, 'use the final URL in the control file');
      }
      if (target.protocol === 'https:' && next.protocol === 'http:') {
        throw new FetchError(req.url, `the server redirects from https to plain http (${next.href})`, 'use a URL that stays on https, or the http URL if you accept that');
      }
      target = next;
      continue;
    }
    if (status === 304) {
      res.resume();
      if (!req.validators) throw new FetchError(req.url, 'the server answered 304 Not Modified to a request that was not conditional', 'fix the server');
      return { kind: 'not-modified' };
    }
    if (status === 200) return receiveBody(req.url, res, req, state);
    res.resume();
    throw classifyStatus(req.url, res);
  }
}
