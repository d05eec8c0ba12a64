import type { Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { integerSetting, loadConfig } from './config.ts';
import { OrderRequestSchema } from './events.ts';
import { findOrder, ORDER_REACTS_TO, placeOrder, reactAsOrder, rejectOverdueOrders } from './order-saga.ts';
import { runService, startSagaService } from './service-runtime.ts';

// The order service: an HTTP API for customers, a consumer of the saga's events, and the deadline.
//   PORT=3000 npx tsx lessons/17-saga-choreography/order-service.ts
// POST /orders {"customerId","lines":[{"sku","quantity"}],"amountCents"} answers 202 with the
// PENDING order at once; GET /orders/:orderId shows where its saga is.
// ORDER_DEADLINE_MS (default 30000): how long a saga may stay PENDING before it is rejected.

const SERVICE = 'order-service';

runService(SERVICE, async () => {
  const config = loadConfig(SERVICE);
  const port = integerSetting(process.env, 'PORT', 3000, 0, 65_535);
  const deadlineMs = integerSetting(process.env, 'ORDER_DEADLINE_MS', 30_000, 1, 24 * 3_600_000);
  const service = await startSagaService({ name: SERVICE, reactsTo: ORDER_REACTS_TO, react: reactAsOrder }, config);
  const { pool, relay } = service;

  const app = express();
  app.use(express.json({ limit: '64kb' }));
  app.get('/health', (_req, res) => {
    res.json({ ok: true });
  });
  app.post('/orders', async (req, res) => {
    const parsed = OrderRequestSchema.safeParse(req.body);
    if (!parsed.success) {
      res.status(400).json({ error: parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ') });
      return;
    }
    const order = await placeOrder(pool, parsed.data, { deadlineMs });
    relay.kick();
    console.log(`[${SERVICE}] accepted order ${order.orderId}: PENDING until ${order.deadlineAt}`);
    res.status(202).location(`/orders/${order.orderId}`).json(order);
  });
  app.get('/orders/:orderId', async (req, res) => {
    const orderId = z.uuid().safeParse(req.params.orderId);
    const order = orderId.success ? await findOrder(pool, orderId.data) : undefined;
    if (!order) {
      res.status(404).json({ error: `no order ${req.params.orderId}` });
      return;
    }
    res.json(order);
  });
  app.use((error: Error & { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    // A body that is not JSON is the client's mistake; anything else is ours.
    if (error.status && error.status < 500) {
      res.status(error.status).json({ error: error.message });
      return;
    }
    console.error(`[${SERVICE}] request failed: ${error.message}`);
    res.status(500).json({ error: error.message });
  });

  const server = await new Promise<Server>((resolve, reject) => {
    const listening = app.listen(port, '127.0.0.1', (error?: Error) => (error ? reject(error) : resolve(listening)));
  });

  // The deadline sweep: a saga nobody settles in time is rejected, and its steps undone.
  const sweepEveryMs = Math.min(1_000, Math.max(50, Math.floor(deadlineMs / 10)));
  const sweeping = new AbortController();
  const sweep = (async () => {
    let lastError = '';
    while (!sweeping.signal.aborted) {
      try {
        // Most sweeps find nothing: one lookup in the index of pending deadlines says so.
        const { rows } = await pool.query<{ overdue: boolean }>("SELECT EXISTS (SELECT 1 FROM orders WHERE status = 'PENDING' AND deadline_at <= now()) AS overdue");
        const rejected = rows[0]?.overdue ? await rejectOverdueOrders(pool) : [];
        if (rejected.length > 0) {
          relay.kick();
          console.log(`[${SERVICE}] deadline passed: rejected ${rejected.join(', ')} (timeout)`);
        }
        lastError = '';
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        if (message !== lastError) console.error(`[${SERVICE}] deadline sweep failed: ${message}`);
        lastError = message;
      }
      await sleep(sweepEveryMs, undefined, { signal: sweeping.signal }).catch(() => {});
    }
  })();

  service.onShutdown(async () => {
    sweeping.abort();
    await sweep;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  console.log(`[${SERVICE}] listening on http://127.0.0.1:${port}, sagas rejected after ${deadlineMs} ms`);
});
