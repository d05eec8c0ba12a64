import type { Channel, ConsumeMessage } from 'amqplib';
import { parseJob, type UploadJob } from './jobs.ts';

export interface JobContext {
  /** True when the broker delivered this job before, to a worker that did not acknowledge it. */
  redelivered: boolean;
}

export type JobHandler = (job: UploadJob, context: JobContext) => Promise<void>;

export interface WorkerOptions {
  /** The most jobs this worker holds unacknowledged at a time. */
  prefetch: number;
  /** Used in log lines. */
  name?: string;
}

export interface Worker {
  queue: string;
  consumerTag: string;
}

/**
 * Consumes jobs from the work queue. Every job is acknowledged only after the handler has
 * finished it: if the worker dies first, the broker gives the job to another worker.
 */
export async function startWorker(channel: Channel, queue: string, handle: JobHandler, options: WorkerOptions): Promise<Worker> {
  const name = options.name ?? 'worker';
  // TODO:
  // 1. limit how many unacknowledged jobs the broker sends this worker (options.prefetch);
  // 2. consume the queue with manual acknowledgements; for each message (null means the broker
  //    cancelled the consumer: ignore it) call work(...) below and .catch() its promise so a
  //    failure is logged instead of becoming an unhandled rejection;
  // 3. return { queue, consumerTag }.
  throw new Error('TODO: startWorker');
}

async function work(channel: Channel, message: ConsumeMessage, handle: JobHandler, name: string): Promise<void> {
  // TODO: parse the body with parseJob(message.content).
  // - Malformed: log the reason and reject the message for good (requeueing it would loop forever);
  //   the queue's dead-letter settings (queue.ts) move it to the dead-letter queue.
  // - Valid: run the handler with { redelivered: message.fields.redelivered } and acknowledge the
  //   message only once the handler has finished. If it fails (it may throw before returning a
  //   promise, or its promise may reject), log it with console.error, naming the jobId and the
  //   error, and nack the message, requeueing it only if it was not already redelivered: one retry,
  //   then the dead-letter queue.
  throw new Error('TODO: work');
}
