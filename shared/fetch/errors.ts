/**
 * The one error a fetch raises for anything a person can cause or fix: a URL
 * that is wrong or unreachable, a server that says no, an archive that is
 * corrupt or hostile, a digest that does not match, a missing tool. It says
 * which URL (or path), what went wrong, and what to do; the CLI prints it
 * without a stack trace. Anything else that escapes is a bug.
 */
export class FetchError extends Error {
  override readonly name = 'FetchError';

  constructor(
    /** The URL (or, for a directory source, the path) the fetch was about. */
    readonly url: string,
    /** What went wrong, in words a person understands. */
    readonly reason: string,
    /** What to do about it. */
    readonly hint: string,
    options?: { cause?: unknown },
  ) {
    super(`${url}: ${reason}`, options);
  }
}

/**
 * A failure that may go away if we try again (connection reset or refused, a
 * stall, HTTP 5xx or 429, a body cut short). Only the retry loop sees these:
 * when it gives up it turns the last one into a FetchError.
 */
export class TransientFailure extends Error {
  override readonly name = 'TransientFailure';

  constructor(
    readonly reason: string,
    readonly hint: string,
    /** How long the server asked us to wait (Retry-After), if it did. */
    readonly retryAfterMs?: number,
  ) {
    super(reason);
  }
}
