import { once } from 'node:events';
import type { ConfirmChannel } from 'amqplib';
import { encodeJob, type UploadJob } from './jobs.ts';

/**
 * Sends jobs to the work queue and resolves once the broker has confirmed every one of them, or
 * rejects if it refused any. Only then may the caller tell the user "your upload is being
 * processed": a job the broker never confirmed may be lost.
 */
export async function publishJobs(channel: ConfirmChannel, queue: string, jobs: readonly UploadJob[]): Promise<void> {
  // TODO: send each job to the queue (channel.sendToQueue) as a JSON message (encodeJob) that is
  // written to disk, so it survives a broker restart. When sendToQueue returns false, wait for the
  // channel's 'drain' event before sending more. Then wait until the broker has confirmed every
  // message on this confirm channel: that promise rejects if the broker refused one.
  throw new Error('TODO: publishJobs');
}
