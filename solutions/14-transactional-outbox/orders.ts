import type pg from 'pg';
import { ORDER, ORDER_CANCELLED, ORDER_PLACED, orderTotalCents, type NewOrder, type OutboxEvent } from './events.ts';
import { appendEvent } from './outbox.ts';

export interface PlacedOrder {
  orderId: string;
  /** The order.placed event, written to the outbox in the same transaction as the order. */
  event: OutboxEvent;
}

export type CancelOutcome =
  | { status: 'cancelled'; event: OutboxEvent }
  | { status: 'already-cancelled' }
  | { status: 'not-found' };

/**
 * Runs `work` in one transaction, on one connection taken from the pool: COMMIT when it resolves,
 * ROLLBACK when it throws (and the error is rethrown). The connection always goes back to the
 * pool, and never in the middle of a transaction.
 */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // A connection whose ROLLBACK failed is in an unknown state: the pool must close it, not reuse it.
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackError) {
      broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    }
    throw error;
  } finally {
    client.release(broken);
  }
}

/**
 * Places an order: the order row and its order.placed event (sequence 1) commit together, or
 * neither is written. Nothing here talks to the broker, so placing an order works while it is down.
 */
export async function placeOrder(pool: pg.Pool, order: NewOrder): Promise<PlacedOrder> {
  const totalCents = orderTotalCents(order.items);
  return inTransaction(pool, async (client) => {
    await client.query('INSERT INTO orders (id, customer_id, items, total_cents) VALUES ($1, $2, $3, $4)', [
      order.orderId,
      order.customerId,
      JSON.stringify(order.items),
      totalCents,
    ]);
    const event = await appendEvent(client, {
      aggregateType: ORDER,
      aggregateId: order.orderId,
      sequence: 1,
      type: ORDER_PLACED,
      payload: { orderId: order.orderId, customerId: order.customerId, items: order.items, totalCents },
    });
    return { orderId: order.orderId, event };
  });
}

/**
 * Cancels a placed order and appends its order.cancelled event, with the order's next sequence
 * number, in one transaction. Cancelling twice, even at the same moment, cancels once.
 */
export async function cancelOrder(pool: pg.Pool, orderId: string, reason: string): Promise<CancelOutcome> {
  return inTransaction(pool, async (client) => {
    // One statement checks the status and changes it, under the row lock it takes: a concurrent
    // cancellation waits for this one to commit, then finds the order no longer 'placed'.
    const { rows } = await client.query<{ version: number }>(
      `UPDATE orders SET status = 'cancelled', version = version + 1
       WHERE id = $1 AND status = 'placed'
       RETURNING version`,
      [orderId],
    );
    const cancelled = rows[0];
    if (!cancelled) {
      const existing = await client.query('SELECT 1 FROM orders WHERE id = $1', [orderId]);
      return existing.rowCount ? { status: 'already-cancelled' } : { status: 'not-found' };
    }
    const event = await appendEvent(client, {
      aggregateType: ORDER,
      aggregateId: orderId,
      sequence: cancelled.version,
      type: ORDER_CANCELLED,
      payload: { orderId, reason },
    });
    return { status: 'cancelled', event };
  });
}
