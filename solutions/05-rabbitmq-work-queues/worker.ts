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
  // Set before consuming: the broker sends this consumer at most `prefetch` unacknowledged jobs,
  // and the next one only when it acks, so a slow worker does not sit on a pile of waiting jobs.
  await channel.prefetch(options.prefetch);

  const { consumerTag } = await channel.consume(
    queue,
    (message) => {
      // null: the broker cancelled this consumer (its queue was deleted).
      if (message === null) return;
      work(channel, message, handle, name).catch((error: unknown) =>
        console.error(`[${name}] could not settle a job message:`, error),
      );
    },
    { noAck: false },
  );
  return { queue, consumerTag };
}

async function work(channel: Channel, message: ConsumeMessage, handle: JobHandler, name: string): Promise<void> {
  const parsed = parseJob(message.content);
  if (!parsed.ok) {
    // Requeueing a message that can never be read would loop forever: reject it for good (to the
    // dead-letter queue).
    console.error(`[${name}] rejected a malformed job: ${parsed.reason}`);
    channel.nack(message, false, false);
    return;
  }
  try {
    // Inside the try: a handler that throws before returning its promise is caught too.
    await handle(parsed.job, { redelivered: message.fields.redelivered });
  } catch (error) {
    // One more attempt (on whichever worker gets it next), then the dead-letter queue: requeueing
    // every time would hand the job back at once, to fail again, forever. Lesson 10 adds delays.
    const requeue = !message.fields.redelivered;
    console.error(`[${name}] job ${parsed.job.jobId} failed, ${requeue ? 'will retry once' : 'parked in the dead-letter queue'}:`, error);
    channel.nack(message, false, requeue);
    return;
  }
  // Only now is the job done: the ack lets the broker forget it.
  channel.ack(message);
}
