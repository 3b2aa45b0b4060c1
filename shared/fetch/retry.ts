/**
 * Retrying what may succeed on a second try, with exponential backoff, and
 * nothing else: a 404 or a wrong digest fails at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';

import { FetchError, TransientFailure } from './errors.js';

export interface RetryPolicy {
  /** The URL the attempts are about, for the log and the final error. */
  url: string;
  /** Extra attempts after the first. */
  retries: number;
  /** Wait before the first retry; each later wait doubles, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/** The wait before retry number `retry` (1-based), with up to 25% jitter so many agents do not retry in step. */
export function backoffDelay(retry: number, baseDelayMs: number, maxDelayMs: number, random: () => number = Math.random): number {
  const exponential = Math.min(maxDelayMs, baseDelayMs * 2 ** (retry - 1));
  return Math.round(exponential * (0.75 + 0.25 * random()));
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

/**
 * Runs `attempt` until it succeeds, throws something that is not a
 * TransientFailure, or has failed transiently 1 + retries times; then the last
 * transient failure becomes a FetchError that says how many attempts were made.
 */
export async function withRetries<T>(policy: RetryPolicy, attempt: (n: number) => Promise<T>): Promise<T> {
  const attempts = policy.retries + 1;
  for (let n = 1; ; n++) {
    policy.signal?.throwIfAborted();
    try {
      return await attempt(n);
    } catch (error) {
      if (!(error instanceof TransientFailure)) throw error;
      if (n >= attempts) {
        const tries = attempts === 1 ? 'after 1 attempt' : `after ${attempts} attempts`;
        throw new FetchError(policy.url, `${error.reason} (gave up ${tries})`, error.hint, { cause: error });
      }
      const backoff = backoffDelay(n, policy.baseDelayMs, policy.maxDelayMs);
      const wait = Math.min(policy.maxDelayMs, Math.max(backoff, error.retryAfterMs ?? 0));
      policy.log(`${policy.url}: ${error.reason}; retry ${n}/${policy.retries} in ${formatDuration(wait)}`);
      await sleep(wait, undefined, policy.signal ? { signal: policy.signal } : undefined);
    }
  }
}
