/**
 * How often and how patiently a failed message is retried. `delaysMs[i]` is the wait before
 * retry i + 1, so [100, 300] means: deliver, wait 100 ms, deliver again, wait 300 ms, deliver a
 * third time, then dead-letter. An empty list means no retries: the first failure is final.
 */
export interface RetryPolicy {
  delaysMs: readonly number[];
}

export type NextStep =
  /** Deliver the message again as `attempt`, after `delayMs`. */
  | { action: 'retry'; attempt: number; delayMs: number }
  /** Give up: move the message to the dead-letter queue or topic. */
  | { action: 'dead-letter' };

/** Deliveries a message gets in all: the first one plus one per delay. */
export function maxAttempts(policy: RetryPolicy): number {
  return policy.delaysMs.length + 1;
}

/** What to do with a message whose delivery number `failedAttempt` (1, 2, …) has just failed. */
export function afterFailure(policy: RetryPolicy, failedAttempt: number): NextStep {
  // TODO: failed attempt n is followed by attempt n + 1 after policy.delaysMs[n - 1], as long as
  // there is such a delay. Past the last delay (or for an attempt number below 1, or not a whole
  // number) the message is dead-lettered: never loop, never read past the end of the list.
  throw new Error('TODO: afterFailure');
}
