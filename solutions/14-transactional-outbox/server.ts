import express, { type NextFunction, type Request, type Response } from 'express';
import pg from 'pg';
import { z } from 'zod';
import { loadServerConfig } from './config.ts';
import { NewOrderSchema } from './events.ts';
import { migrate } from './migrate.ts';
import { cancelOrder, placeOrder } from './orders.ts';
import { closeOnShutdown, describeError, startOrExit } from './runtime.ts';

// The order service: `PORT=3000 npx tsx lessons/14-transactional-outbox/server.ts`
//   curl -X POST localhost:3000/orders -H 'content-type: application/json' \
//     -d '{"orderId":"'$(uuidgen)'","customerId":"ada","items":[{"sku":"tea","quantity":2,"unitPriceCents":450}]}'
// It never talks to RabbitMQ: events go to the outbox, and relay.ts publishes them.

const NAME = 'order-service';
const config = await startOrExit(NAME, async () => loadServerConfig());
const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 10 });
pool.on('error', (error) => console.error(`[${NAME}] idle database connection failed: ${error.message}`));
await startOrExit(NAME, () => migrate(pool));

const CancelSchema = z.object({ reason: z.string().min(1).default('cancelled by the customer') });
const OrderIdSchema = z.uuid();

const app = express();
app.use(express.json());

app.get('/health', (_request, response) => {
  // Healthy without the broker: the order service no longer depends on it.
  response.json({ ok: true });
});

app.post('/orders', async (request, response) => {
  const parsed = NewOrderSchema.safeParse(request.body);
  if (!parsed.success) {
    response.status(400).json({ error: z.prettifyError(parsed.error) });
    return;
  }
  try {
    const placed = await placeOrder(pool, parsed.data);
    response.status(201).json({ orderId: placed.orderId, eventId: placed.event.eventId });
  } catch (error) {
    // 23505: unique violation. The client chose an order id that exists: a retried request.
    if ((error as { code?: unknown }).code !== '23505') throw error;
    response.status(409).json({ error: `order ${parsed.data.orderId} already exists` });
  }
});

app.post('/orders/:orderId/cancel', async (request, response) => {
  const orderId = OrderIdSchema.safeParse(request.params.orderId);
  const body = CancelSchema.safeParse(request.body ?? {});
  if (!orderId.success || !body.success) {
    response.status(orderId.success ? 400 : 404).json({ error: orderId.success ? 'reason must be a non-empty string' : 'no such order' });
    return;
  }
  const outcome = await cancelOrder(pool, orderId.data, body.data.reason);
  if (outcome.status === 'cancelled') response.json({ orderId: orderId.data, eventId: outcome.event.eventId });
  else if (outcome.status === 'already-cancelled') response.status(409).json({ error: `order ${orderId.data} is already cancelled` });
  else response.status(404).json({ error: 'no such order' });
});

// Express 5 passes the errors of async handlers here.
app.use((error: unknown, request: Request, response: Response, _next: NextFunction) => {
  console.error(`[${NAME}] ${request.method} ${request.path} failed: ${describeError(error)}`);
  response.status(500).json({ error: 'internal error' });
});

const server = app.listen(config.port, '127.0.0.1', (error?: Error) => {
  if (error) {
    console.error(`[${NAME}] could not listen on port ${config.port}: ${error.message}`);
    process.exit(1);
  }
  console.log(`[${NAME}] ready: http://127.0.0.1:${config.port}`);
});

closeOnShutdown(NAME, async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await pool.end();
});
