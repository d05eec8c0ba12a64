import { Redis } from 'ioredis';
import { loadWorkerConfig } from './config.ts';
import { simulatedMailProvider } from './mailer.ts';
import { startProcessing } from './processors.ts';
import { closeQueues, createQueues } from './queues.ts';
import { simulatedReportBuilder } from './report-builder.ts';
import { closeOnShutdown, configOrExit, describeError } from './runtime.ts';

// One worker: `npx tsx lessons/13-background-jobs/worker.ts`. Start several to share the jobs.
// MAILER_REPLY_MS and MAILER_FAILS_FOR shape the simulated mail provider, REPORT_WORK_MS the reports.
const config = configOrExit('worker', () => loadWorkerConfig());
const queues = createQueues(config.queues);
const redis = new Redis(config.queues.redisUrl, { connectionName: 'background-jobs-worker' });
redis.on('error', (error) => console.error(`[worker] redis: ${error.message}`));

for (const queue of [queues.emails, queues.reports]) {
  queue.on('error', (error) => console.error(`[worker] ${queue.name}: ${describeError(error)}`));
  queue.on('completed', (job) => console.log(`[worker] completed ${queue.name} job ${job.id}`));
  queue.on('failed', (job, error) =>
    console.error(`[worker] ${queue.name} job ${job.id} failed (attempt ${job.attemptsMade} of ${job.opts.attempts ?? 1}): ${error.message}`));
  queue.on('stalled', (job) => console.error(`[worker] ${queue.name} job ${job.id} had stalled (its worker died?): running it again`));
}

await startProcessing(
  queues,
  {
    redis,
    mailer: simulatedMailProvider(config.mailer),
    buildReport: simulatedReportBuilder({ workMs: config.reportWorkMs }),
    keyPrefix: config.queues.prefix,
  },
  config.concurrency,
);
console.log(`[worker] ready: processing "${config.queues.prefix}:" emails (${config.concurrency.emails} at a time) and reports (${config.concurrency.reports} at a time)`);

closeOnShutdown('worker', async () => {
  // close() waits for the jobs in progress to finish; a second Ctrl-C exits at once.
  await closeQueues(queues);
  await redis.quit();
});
