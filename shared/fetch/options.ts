/**
 * What every fetch can be told, and the defaults. Kept apart from index.ts so
 * the modules behind it can take the resolved form without a cycle.
 */
export interface FetchProgress {
  url: string;
  receivedBytes: number;
  /** From Content-Length (or the file's size); absent when the server does not say. */
  totalBytes?: number;
  /** True on the last call for this transfer, when it completed. */
  done: boolean;
}

export interface FetchOptions {
  /** Persistent across nights: downloads and git clones live here. */
  cacheDir: string;
  /** Size limit for a download AND for the extracted tree (default 4 GiB). */
  maxBytes?: number;
  /** Transient failures (connection reset/refused, stalls, HTTP 5xx, 429) are retried with backoff; default 3. */
  retries?: number;
  /** The wait before the first retry, doubling for each later one up to 30 s; default 1000. */
  retryDelayMs?: number;
  /** Per attempt: how long a transfer (or a git or decompression command) may go without progress; default 60000. */
  timeoutMs?: number;
  /** Called as bytes arrive. */
  progress?: (p: FetchProgress) => void;
  /** One human line per event (cache hit, revalidated, retry 2/3 after ..., cloned, fetched). */
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export const DEFAULT_MAX_BYTES = 4 * 1024 ** 3;
export const DEFAULT_RETRIES = 3;
export const DEFAULT_RETRY_DELAY_MS = 1000;
export const MAX_RETRY_DELAY_MS = 30_000;
export const DEFAULT_TIMEOUT_MS = 60_000;

export interface ResolvedOptions {
  cacheDir: string;
  maxBytes: number;
  retries: number;
  retryDelayMs: number;
  timeoutMs: number;
  progress?: (p: FetchProgress) => void;
  log: (line: string) => void;
  signal?: AbortSignal;
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  // A caller passing nonsense is a bug in the caller, not something a user did.
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`FetchOptions.${name} must be a non-negative number, got ${value}`);
  return value;
}

export function resolveOptions(options: FetchOptions): ResolvedOptions {
  if (!options.cacheDir) throw new TypeError('FetchOptions.cacheDir is required');
  return {
    cacheDir: options.cacheDir,
    maxBytes: nonNegative('maxBytes', options.maxBytes, DEFAULT_MAX_BYTES),
    retries: Math.floor(nonNegative('retries', options.retries, DEFAULT_RETRIES)),
    retryDelayMs: nonNegative('retryDelayMs', options.retryDelayMs, DEFAULT_RETRY_DELAY_MS),
    timeoutMs: nonNegative('timeoutMs', options.timeoutMs, DEFAULT_TIMEOUT_MS) || DEFAULT_TIMEOUT_MS,
    ...(options.progress ? { progress: options.progress } : {}),
    log: options.log ?? (() => {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}
