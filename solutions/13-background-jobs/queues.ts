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
 * failure): bull's own exponential curve, round((2^attemptsMade - 1) * delay), so 1, 3, 7, 15 times
 * the delay (node_modules/bull/lib/backoffs.js), but never more than `max`. Without a cap, attempt 20
 * would wait a million times the delay.
 */
export function cappedExponentialBackoff(attemptsMade: number, { delay, max }: CappedBackoffOptions): number {
  return Math.min(max, Math.round((2 ** attemptsMade - 1) * delay));
}

/**
 * Opens the lesson's two queues. The server adds jobs to them and the worker processes them, each
 * with its own instances; both must be made here so that they agree on every option.
 */
export function createQueues(config: QueueConfig): Queues {
  const settings: Queue.AdvancedSettings = {
    lockDuration: config.stall.lockDurationMs,
    stalledInterval: config.stall.stalledIntervalMs,
    maxStalledCount: config.stall.maxStalledCount,
  };
  const emails = new Queue<Signup>(EMAIL_QUEUE, config.redisUrl, {
    prefix: config.prefix,
    settings: {
      ...settings,
      // Looked up by the worker that runs the failed attempt, so the worker's queue must have it.
      backoffStrategies: {
        [CAPPED_EXPONENTIAL]: (attemptsMade: number, _error: Error, options?: CappedBackoffOptions) =>
          cappedExponentialBackoff(attemptsMade, options ?? { delay: config.emailRetry.backoffDelayMs, max: config.emailRetry.maxBackoffMs }),
      },
    },
    // Applied by the queue that adds a job and stored with it: every welcome email gets them.
    defaultJobOptions: {
      // Without attempts (bull's default is 1), a backoff is never used: the first failure is final.
      attempts: config.emailRetry.attempts,
      backoff: {
        type: CAPPED_EXPONENTIAL,
        options: { delay: config.emailRetry.backoffDelayMs, max: config.emailRetry.maxBackoffMs } satisfies CappedBackoffOptions,
      },
      removeOnComplete: { age: KEEP_COMPLETED_SECONDS },
      removeOnFail: { age: KEEP_FAILED_SECONDS },
    },
  });
  const reports = new Queue<ReportRequest>(REPORT_QUEUE, config.redisUrl, {
    prefix: config.prefix,
    settings,
    // Per account: bull appends ":<accountId>" to every job id on add, and the worker counts starts
    // per group. Both the adding and the processing queue need this option.
    limiter: { max: config.reportRateLimit.max, duration: config.reportRateLimit.durationMs, groupKey: 'accountId' },
    defaultJobOptions: {
      removeOnComplete: { age: KEEP_COMPLETED_SECONDS },
      removeOnFail: { age: KEEP_FAILED_SECONDS },
    },
  });
  return { emails, reports };
}

/** Closes both queues; a worker's queue first waits for the jobs it is running to finish. */
export async function closeQueues(queues: Queues): Promise<void> {
  await Promise.all([queues.emails.close(), queues.reports.close()]);
}
