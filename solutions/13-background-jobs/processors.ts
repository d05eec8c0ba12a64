import type { Job } from 'bull';
import type { Redis } from 'ioredis';
import { MONTHLY_REPORT, WELCOME_EMAIL } from './jobs.ts';
import { welcomeMessage, type Mailer } from './mailer.ts';
import type { Queues } from './queues.ts';
import type { ReportBuilder, ReportResult } from './report-builder.ts';
import type { ReportRequest, Signup } from './requests.ts';
import { describeError } from './runtime.ts';

export interface ProcessorDeps {
  /** A connection of the worker's own, for the sent records. */
  redis: Redis;
  mailer: Mailer;
  buildReport: ReportBuilder;
  /** The sent records live under it (the worker gives it the queue prefix). */
  keyPrefix: string;
}

export interface Concurrency {
  emails: number;
  reports: number;
}

export type WelcomeEmailResult = { sent: true; messageId: string } | { sent: false; reason: string };

/** The record that a user's welcome email went out (or is going out right now). */
export function sentRecordKey(keyPrefix: string, userId: string): string {
  return `${keyPrefix}:sent-welcome-email:${userId}`;
}

/** Long enough that nobody gets a second welcome email; short enough that the records do not pile up forever. */
const SENT_RECORD_TTL_SECONDS = 400 * 24 * 3600;

/**
 * Sends a user's welcome email at most once, however often the job runs: a retry, a rerun after a
 * stall, a second job for the same user. The record is claimed (SET NX) before the provider is
 * called, so a worker that dies while the provider is answering leaves the claim behind, and the
 * rerun skips the send. A send that fails gives the claim back, so the retry can send.
 */
export function welcomeEmailProcessor({ redis, mailer, keyPrefix }: ProcessorDeps): (job: Job<Signup>) => Promise<WelcomeEmailResult> {
  return async (job) => {
    const key = sentRecordKey(keyPrefix, job.data.userId);
    const claimed = await redis.set(key, `sending (job ${job.id})`, 'EX', SENT_RECORD_TTL_SECONDS, 'NX');
    if (claimed === null) return { sent: false, reason: `already handled: ${await redis.get(key)}` };
    let messageId: string;
    try {
      ({ messageId } = await mailer.send(welcomeMessage(job.data)));
    } catch (error) {
      await redis.del(key);
      throw error;
    }
    // "sending" left behind means a run died before the provider answered: check its log by hand.
    await redis.set(key, `sent as ${messageId}`, 'KEEPTTL');
    return { sent: true, messageId };
  };
}

/** Builds a report, storing its progress on the job as it goes; the result becomes the job's. */
export function reportProcessor({ buildReport }: ProcessorDeps): (job: Job<ReportRequest>) => Promise<ReportResult> {
  return (job) => buildReport(job.data, async (percent) => {
    await job.progress(percent);
  });
}

/**
 * Starts running both queues' jobs, up to `concurrency` of each at a time, and resolves once Redis
 * answers on both queues. bull's process() returns a promise that settles only when the queue
 * closes: it is watched for errors, never awaited.
 */
export async function startProcessing(queues: Queues, deps: ProcessorDeps, concurrency: Concurrency): Promise<void> {
  const report = (queue: string) => (error: unknown) => console.error(`[worker] the ${queue} queue stopped: ${describeError(error)}`);
  queues.emails.process(WELCOME_EMAIL, concurrency.emails, welcomeEmailProcessor(deps)).catch(report('emails'));
  queues.reports.process(MONTHLY_REPORT, concurrency.reports, reportProcessor(deps)).catch(report('reports'));
  // In bull 4.16 isReady() does not wait for the connection, whatever its typings say: a PING does.
  await Promise.all([queues.emails.client.ping(), queues.reports.client.ping()]);
}
