import { setTimeout as sleep } from 'node:timers/promises';
import type { UploadJob } from './jobs.ts';

/**
 * Stands in for the real work (download the file, resize it, store the thumbnail): it takes
 * `workMs` milliseconds and returns where the thumbnail would be stored.
 */
export async function makeThumbnail(job: UploadJob, workMs: number): Promise<string> {
  await sleep(workMs);
  return `thumbnails/${job.jobId}.png`;
}
