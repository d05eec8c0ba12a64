import express, { type Express } from 'express';
import type pg from 'pg';
import { errorHandler, requestIdFrom, requestLogging, userIdFrom } from '../../platform/http.ts';
import { checkOrderLines, UUID } from '../../platform/validation.ts';
import { placeOrder } from './orders.ts';
import { findOrder, ordersOf } from './queries.ts';

/** The orders service's API: the same contract as the monolith's /orders endpoints. */
export function createOrdersApp(pool: pg.Pool, instanceId = 'orders'): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(requestLogging('orders', instanceId));
  app.use(express.json());

  app.get('/health', (_request, response) => {
    response.json({ ok: true, service: 'orders', instanceId });
  });

  app.post('/orders', async (request, response) => {
    const userId = userIdFrom(request, response);
    if (!userId) return;
    const lines = checkOrderLines(request.body);
    if (!lines.ok) {
      response.status(400).json({ error: lines.error });
      return;
    }
    // 201 with status 'placed': the payment happens after the answer, not before it.
    response.status(201).json(await placeOrder(pool, userId, lines.value, requestIdFrom(response)));
  });

  app.get('/orders', async (request, response) => {
    const userId = userIdFrom(request, response);
    if (!userId) return;
    if (request.query.userId !== userId) {
      response.status(403).json({ error: 'you can only list your own orders (?userId=<your id>)' });
      return;
    }
    response.json(await ordersOf(pool, userId));
  });

  app.get('/orders/:id', async (request, response) => {
    const userId = userIdFrom(request, response);
    if (!userId) return;
    const order = UUID.test(request.params.id) ? await findOrder(pool, request.params.id) : undefined;
    if (!order || order.userId !== userId) response.status(404).json({ error: 'no such order' });
    else response.json(order);
  });

  app.use(errorHandler('orders'));
  return app;
}
