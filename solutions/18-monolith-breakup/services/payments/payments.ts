import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { inTransaction } from '../../platform/db.ts';
import { newEvent, type Envelope } from '../../platform/events.ts';
import { appendToOutbox } from '../../platform/outbox.ts';

/**
 * The payments side of the flow: an OrderPlaced arrives from the queue, the payment is captured
 * (the course's payment provider accepts every amount) and PaymentCaptured goes out through the
 * outbox. The orders service is never called.
 */

/**
 * Captures the payment of an order and writes PaymentCaptured to the outbox, in one transaction.
 * Idempotent: an OrderPlaced delivered twice (or two at once, to two instances) captures one
 * payment and announces it once. Returns whether this call captured it.
 */
export async function capturePayment(pool: pg.Pool, order: Envelope<'OrderPlaced'>): Promise<boolean> {
  return inTransaction(pool, async (client) => {
    const paymentId = randomUUID();
    // order_id is unique: of two deliveries racing, the second insert does nothing and returns no row.
    const { rowCount } = await client.query(
      `INSERT INTO payments (id, order_id, user_id, amount_cents, status) VALUES ($1, $2, $3, $4, 'captured')
       ON CONFLICT (order_id) DO NOTHING`,
      [paymentId, order.data.orderId, order.data.userId, order.data.totalCents],
    );
    if (rowCount === 0) return false;
    await appendToOutbox(
      client,
      newEvent('PaymentCaptured', { paymentId, orderId: order.data.orderId, userId: order.data.userId, amountCents: order.data.totalCents }, order.requestId),
    );
    return true;
  });
}
