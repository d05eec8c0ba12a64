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
export function welcomeEmailProcessor(deps: ProcessorDeps): (job: Job<Signup>) => Promise<WelcomeEmailResult> {
  // TODO: return the processor: an async function of the job that
  // 1. claims sentRecordKey(deps.keyPrefix, job.data.userId) in one atomic step that succeeds for
  //    one caller only (redis.set(key, value, 'EX', SENT_RECORD_TTL_SECONDS, 'NX') resolves with
  //    null when the key exists); when the claim fails, returns { sent: false, reason };
  // 2. sends welcomeMessage(job.data) with deps.mailer; if the send throws or rejects, deletes the
  //    claim and lets the error reach bull (so bull retries the job);
  // 3. returns { sent: true, messageId }.
  throw new Error('TODO: welcomeEmailProcessor');
}

/** Builds a report, storing its progress on the job as it goes; the result becomes the job's. */
export function reportProcessor(deps: ProcessorDeps): (job: Job<ReportRequest>) => Promise<ReportResult> {
  // TODO: return a processor that builds the report with deps.buildReport(job.data, onProgress),
  // where onProgress stores the percentage on the job (job.progress(percent)), and resolves with
  // the builder's result once the report is built.
  throw new Error('TODO: reportProcessor');
}

/**
 * Starts running both queues' jobs, up to `concurrency` of each at a time, and resolves once Redis
 * answers on both queues.
 */
export async function startProcessing(queues: Queues, deps: ProcessorDeps, concurrency: Concurrency): Promise<void> {
  // TODO: register welcomeEmailProcessor(deps) for WELCOME_EMAIL jobs on queues.emails and
  // reportProcessor(deps) for MONTHLY_REPORT jobs on queues.reports, each with its concurrency:
  // queue.process(name, concurrency, processor). process() returns a promise that settles only when
  // the queue closes: .catch() it to log an error, never await it. Then wait until Redis answers on
  // both queues: queue.client.ping() (in bull 4.16, isReady() does not wait for the connection).
  throw new Error('TODO: startProcessing');
}
