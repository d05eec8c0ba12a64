/** Raised when something the relay waits for (a confirm, a connection) did not happen in time. */
export class TimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`${what} did not happen within ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

/**
 * Settles like `promise`, or rejects with a TimeoutError after `ms` milliseconds, whichever comes
 * first. The promise itself is not cancelled (nothing can cancel a promise): whoever uses this must
 * also stop whatever the promise was waiting on, e.g. drop the connection.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(what, ms)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Waits `ms` milliseconds, or less if `signal` aborts first (a relay that is asked to stop). */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export interface BackoffOptions {
  /** The first delay after a failure. */
  initialMs: number;
  /** No delay is longer than this. */
  maxMs: number;
}

/**
 * Exponential backoff with jitter: after the n-th failure in a row, a random delay between half of
 * and all of min(maxMs, initialMs * 2^(n-1)). The half keeps a relay from retrying in a tight loop;
 * the randomness keeps many relays that lost the broker at the same moment from all reconnecting at
 * the same moment too.
 */
export class Backoff {
  private failures = 0;

  constructor(private readonly options: BackoffOptions) {}

  next(): number {
    this.failures += 1;
    const ceiling = Math.min(this.options.maxMs, this.options.initialMs * 2 ** (this.failures - 1));
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  }

  reset(): void {
    this.failures = 0;
  }
}
