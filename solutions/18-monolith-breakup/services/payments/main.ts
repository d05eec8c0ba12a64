import { join } from 'node:path';
import { runService } from '../../platform/service-host.ts';
import { createPaymentsApp } from './app.ts';
import { capturePayment } from './payments.ts';

// The payments service: PORT=4003 DATABASE_URL=… npx tsx lessons/18-monolith-breakup/services/payments/main.ts

await runService({
  service: 'payments',
  migrations: join(import.meta.dirname, 'migrations'),
  createApp: ({ pool, config }) => createPaymentsApp(pool, config.instanceId),
  consumes: {
    events: ['OrderPlaced'],
    async handle(event, { pool }) {
      if (event.type === 'OrderPlaced') await capturePayment(pool, event);
    },
  },
});
