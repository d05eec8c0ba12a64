import { join } from 'node:path';
import { text, url } from '../../platform/config.ts';
import { logError } from '../../platform/log.ts';
import { runService } from '../../platform/service-host.ts';
import { createNotificationsApp } from './app.ts';
import { createEmailQueue, onEvent, sendEmail, type EmailQueue } from './emails.ts';

// The notifications service: PORT=4004 DATABASE_URL=… REDIS_URL=redis://127.0.0.1:6379 \
//   npx tsx lessons/18-monolith-breakup/services/notifications/main.ts
// BULL_PREFIX (default "bull") is the key prefix of its job queue in Redis.

let queue: EmailQueue | undefined;

await runService({
  service: 'notifications',
  migrations: join(import.meta.dirname, 'migrations'),
  // It only listens: it has no outbox.
  publishes: false,
  async resources({ pool }) {
    const emails = createEmailQueue(url(process.env, 'REDIS_URL', 'redis://127.0.0.1:6379', ['redis:', 'rediss:']), text(process.env, 'BULL_PREFIX', 'bull'));
    emails.on('error', (error) => logError('notifications', undefined, 'email queue', error));
    emails.on('failed', (job, error) => logError('notifications', job.data.requestId, `email job ${job.id}`, error));
    await emails.isReady();
    emails.process(5, (job) => sendEmail(pool, String(job.id), job.data)).catch((error: unknown) => logError('notifications', undefined, 'email worker', error));
    queue = emails;
    return { close: () => emails.close() };
  },
  createApp: ({ pool, config }) => createNotificationsApp(pool, config.instanceId),
  consumes: {
    events: ['UserRegistered', 'OrderConfirmed'],
    async handle(event, { pool }) {
      if (!queue) throw new Error('the email queue is not ready');
      await onEvent(pool, queue, event);
    },
  },
});
