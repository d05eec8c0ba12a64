import express, { type Express } from 'express';
import type pg from 'pg';
import { errorHandler, requestLogging, userIdFrom } from '../../platform/http.ts';
import { paymentsOf } from './queries.ts';

/** The payments service's API: a user's payments, the same contract as the monolith's /payments. */
export function createPaymentsApp(pool: pg.Pool, instanceId = 'payments'): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(requestLogging('payments', instanceId));

  app.get('/health', (_request, response) => {
    response.json({ ok: true, service: 'payments', instanceId });
  });

  app.get('/payments', async (request, response) => {
    const userId = userIdFrom(request, response);
    if (!userId) return;
    if (request.query.userId !== userId) {
      response.status(403).json({ error: 'you can only list your own payments (?userId=<your id>)' });
      return;
    }
    response.json(await paymentsOf(pool, userId));
  });

  app.use(errorHandler('payments'));
  return app;
}
