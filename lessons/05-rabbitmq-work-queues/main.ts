import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';
import { demoName } from './demo-names.ts';
import type { UploadJob } from './jobs.ts';
import { publishJobs } from './producer.ts';
import { assertJobQueue } from './queue.ts';

// A runnable demo: the upload service queueing thumbnail jobs.
//   npx tsx lessons/05-rabbitmq-work-queues/main.ts [how-many]
// Start a few worker-main.ts processes to watch them share the work. AMQP_URL, JOB_QUEUE and
// COURSE_LEARNER work as in worker-main.ts.

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const queue = process.env.JOB_QUEUE ?? demoName('uploads.thumbnails');
const count = Number(process.argv[2] ?? 10);
if (!Number.isInteger(count) || count < 1) {
  console.error(`usage: main.ts [how-many], a whole number of jobs of at least 1, not ${JSON.stringify(process.argv[2])}`);
  process.exit(2);
}

const jobs: UploadJob[] = Array.from({ length: count }, (_, i) => ({
  jobId: randomUUID(),
  fileName: `holiday-${i + 1}.jpg`,
  sizeBytes: 1_000_000 + i * 250_000,
  uploadedBy: 'ada@example.com',
  uploadedAt: new Date().toISOString(),
}));

const connection = await connect(url);
try {
  const channel = await connection.createConfirmChannel();
  await assertJobQueue(channel, queue);
  await publishJobs(channel, queue, jobs);
  console.log(`queued ${jobs.length} thumbnail jobs on "${queue}", every one confirmed by the broker`);
} finally {
  await connection.close();
}
