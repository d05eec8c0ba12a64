import Queue from 'bull';
import { EMAIL_QUEUE, REPORT_QUEUE, type QueueConfig } from './config.ts';
import type { ReportRequest, Signup } from './requests.ts';

export interface Queues {
  emails: Queue.Queue<Signup>;
  reports: Queue.Queue<ReportRequest>;
}

/** The name under which the capped backoff is registered with bull and named in job options. */
export const CAPPED_EXPONENTIAL = 'capped-exponential';

export interface CappedBackoffOptions {
  /** The base delay in milliseconds. */
  delay: number;
  /** No wait is longer than this. */
  max: number;
}

/** Finished jobs are kept this long (seconds) so GET /jobs/:id can still answer, then bull deletes them. */
const KEEP_COMPLETED_SECONDS = 7 * 24 * 3600;
const KEEP_FAILED_SECONDS = 30 * 24 * 3600;

/**
 * How long to wait before the next attempt, after `attemptsMade` failed ones (1 after the first
 * failure): bull's own exponential curve, but never more than `max`. Without a cap, attempt 20 would
 * wait about a million times the delay.
 */
export function cappedExponentialBackoff(attemptsMade: number, options: CappedBackoffOptions): number {
  // TODO: bull's exponential formula for `attemptsMade` (read node_modules/bull/lib/backoffs.js, not
  // BullMQ's documentation: the two libraries differ), rounded to whole milliseconds, at most options.max.
  throw new Error('TODO: cappedExponentialBackoff');
}

/**
 * Opens the lesson's two queues. The server adds jobs to them and the worker processes them, each
 * with its own instances; both must be made here so that they agree on every option.
 */
export function createQueues(config: QueueConfig): Queues {
  // TODO: open two bull queues, EMAIL_QUEUE and REPORT_QUEUE, on config.redisUrl, both with:
  // - prefix: config.prefix (every key bull writes starts with it);
  // - settings: lockDuration, stalledInterval and maxStalledCount from config.stall.
  // The emails queue also gets:
  // - settings.backoffStrategies: { [CAPPED_EXPONENTIAL]: (attemptsMade, error, options) => ... }
  //   calling cappedExponentialBackoff (bull passes a custom strategy the job's backoff.options);
  // - defaultJobOptions: attempts and backoff { type: CAPPED_EXPONENTIAL, options: { delay, max } }
  //   from config.emailRetry, and removeOnComplete / removeOnFail { age } (KEEP_..._SECONDS).
  // The reports queue also gets:
  // - limiter: config.reportRateLimit per account (max, duration, groupKey: 'accountId');
  // - defaultJobOptions: removeOnComplete / removeOnFail { age }.
  throw new Error('TODO: createQueues');
}

/** Closes both queues; a worker's queue first waits for the jobs it is running to finish. */
export async function closeQueues(queues: Queues): Promise<void> {
  await Promise.all([queues.emails.close(), queues.reports.close()]);
}
