import { join } from 'node:path';
import { runService } from '../../platform/service-host.ts';
import { createOrdersApp } from './app.ts';
import { confirmOrder } from './orders.ts';

// The orders service: PORT=4002 DATABASE_URL=… npx tsx lessons/18-monolith-breakup/services/orders/main.ts

await runService({
  service: 'orders',
  migrations: join(import.meta.dirname, 'migrations'),
  createApp: ({ pool, config }) => createOrdersApp(pool, config.instanceId),
  consumes: {
    events: ['PaymentCaptured'],
    async handle(event, { pool }) {
      if (event.type === 'PaymentCaptured') await confirmOrder(pool, event);
    },
  },
});
