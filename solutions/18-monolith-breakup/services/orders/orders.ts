import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { inTransaction } from '../../platform/db.ts';
import { newEvent, type Envelope, type OrderLine } from '../../platform/events.ts';
import { appendToOutbox } from '../../platform/outbox.ts';
import { orderTotalCents } from '../../platform/pricing.ts';
import { ORDER_COLUMNS, toOrder, type Order, type OrderRow } from './queries.ts';

/**
 * The orders side of the flow "order placed → payment → order confirmed → email". Nothing here
 * calls another service: the orders service announces what happened (OrderPlaced, OrderConfirmed)
 * through its outbox and learns what the payments service did (PaymentCaptured) from its queue.
 */

/**
 * Stores a new order as 'placed' with its total (the pricing rule is the orders service's), and
 * its OrderPlaced event in the outbox, in ONE transaction: either both exist or neither does.
 */
export async function placeOrder(pool: pg.Pool, userId: string, lines: OrderLine[], requestId: string | undefined): Promise<Order> {
  const id = randomUUID();
  const totalCents = orderTotalCents(lines);
  return inTransaction(pool, async (client) => {
    const { rows } = await client.query<OrderRow>(
      `INSERT INTO orders (id, user_id, status, lines, total_cents) VALUES ($1, $2, 'placed', $3, $4) RETURNING ${ORDER_COLUMNS}`,
      [id, userId, JSON.stringify(lines), totalCents],
    );
    await appendToOutbox(client, newEvent('OrderPlaced', { orderId: id, userId, totalCents, lines }, requestId));
    return toOrder(rows[0]!);
  });
}

/**
 * Confirms the order a PaymentCaptured is about, and announces it with OrderConfirmed, in one
 * transaction. Idempotent: the same event delivered twice (a redelivery after a crash, a relay that
 * published twice) finds the order already confirmed and changes nothing. Returns whether it did.
 */
export async function confirmOrder(pool: pg.Pool, payment: Envelope<'PaymentCaptured'>): Promise<boolean> {
  return inTransaction(pool, async (client) => {
    // The status in the WHERE clause is the check: of two deliveries racing, one updates, one finds nothing.
    const { rows } = await client.query<{ user_id: string; total_cents: number }>(
      `UPDATE orders SET status = 'confirmed', payment_id = $2, confirmed_at = now()
        WHERE id = $1 AND status = 'placed'
        RETURNING user_id, total_cents`,
      [payment.data.orderId, payment.data.paymentId],
    );
    const confirmed = rows[0];
    if (!confirmed) {
      const { rowCount } = await client.query('SELECT 1 FROM orders WHERE id = $1', [payment.data.orderId]);
      // A payment for an order this service never stored is a bug upstream: fail loudly, retry later.
      if (!rowCount) throw new Error(`PaymentCaptured ${payment.eventId} is for order ${payment.data.orderId}, which does not exist`);
      return false;
    }
    await appendToOutbox(
      client,
      newEvent('OrderConfirmed', { orderId: payment.data.orderId, userId: confirmed.user_id, totalCents: confirmed.total_cents }, payment.requestId),
    );
    return true;
  });
}
