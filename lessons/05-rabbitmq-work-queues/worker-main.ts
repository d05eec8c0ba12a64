import { connect } from 'amqplib';
import { demoName } from './demo-names.ts';
import { assertJobQueue } from './queue.ts';
import { makeThumbnail } from './thumbnails.ts';
import { startWorker } from './worker.ts';

// One worker as its own process. Start as many as you like, each in its own terminal:
//   WORKER_NAME=worker-a npx tsx lessons/05-rabbitmq-work-queues/worker-main.ts
// then publish jobs with main.ts. WORK_MS sets how long each simulated thumbnail takes. AMQP_URL
// says where RabbitMQ is; the queue is <learner>.uploads.thumbnails (COURSE_LEARNER, or user@host:
// see demo-names.ts) unless JOB_QUEUE names another.

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const queue = process.env.JOB_QUEUE ?? demoName('uploads.thumbnails');
const name = process.env.WORKER_NAME ?? `worker-${process.pid}`;
const workMs = Number(process.env.WORK_MS ?? 500);
if (!Number.isInteger(workMs) || workMs < 0) {
  console.error(`WORK_MS must be a whole number of milliseconds, not ${JSON.stringify(process.env.WORK_MS)}`);
  process.exit(2);
}
/** One job at a time per worker: see the fair-dispatch section of the chapter. */
const PREFETCH = 1;

const connection = await connect(url);
let stopping = false;
connection.on('error', (error) => console.error(`[${name}] connection error: ${error.message}`));
connection.on('close', () => {
  if (stopping) return;
  // Exit and let the supervisor restart us; unacknowledged jobs are already back in the queue.
  console.error(`[${name}] lost the connection to RabbitMQ, exiting`);
  process.exit(1);
});
const channel = await connection.createChannel();
channel.on('error', (error) => console.error(`[${name}] channel error: ${error.message}`));

await assertJobQueue(channel, queue);
await startWorker(
  channel,
  queue,
  async (job, { redelivered }) => {
    console.log(`[${name}] started ${job.jobId} redelivered=${redelivered}`);
    const thumbnail = await makeThumbnail(job, workMs);
    console.log(`[${name}] completed ${job.jobId} redelivered=${redelivered} -> ${thumbnail}`);
  },
  { prefetch: PREFETCH, name },
);
console.log(`[${name}] ready: consuming ${queue}`);

async function shutdown(): Promise<void> {
  // Closing returns the job in progress to the queue, unacknowledged: another worker redoes it.
  // The channel first: its close travels behind the acks already sent on it.
  stopping = true;
  await channel.close().catch(() => {});
  await connection.close().catch(() => {});
  process.exit(0);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void shutdown());
