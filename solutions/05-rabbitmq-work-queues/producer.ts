import { once } from 'node:events';
import type { ConfirmChannel } from 'amqplib';
import { encodeJob, type UploadJob } from './jobs.ts';

/**
 * Sends jobs to the work queue and resolves once the broker has confirmed every one of them, or
 * rejects if it refused any. Only then may the caller tell the user "your upload is being
 * processed": a job the broker never confirmed may be lost.
 */
export async function publishJobs(channel: ConfirmChannel, queue: string, jobs: readonly UploadJob[]): Promise<void> {
  for (const job of jobs) {
    // The default exchange delivers straight to the queue named by the routing key.
    const written = channel.sendToQueue(queue, encodeJob(job), {
      persistent: true, // written to disk in a durable queue: survives a broker restart
      contentType: 'application/json',
      messageId: job.jobId,
    });
    if (!written) await once(channel, 'drain');
  }
  // Resolves when the broker has acknowledged every message on this channel; rejects on a nack.
  await channel.waitForConfirms();
}
