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
  // TODO: take one client from the pool (pool.connect()) and run BEGIN, work(client), COMMIT on it,
  // returning what work resolved with. If anything throws, ROLLBACK and rethrow the error. Either
  // way, release the client to the pool at the end (a finally block). A client whose ROLLBACK itself
  // failed is in an unknown state: release it with that error (client.release(error)) so the pool
  // closes it instead of reusing it.
  throw new Error('TODO: inTransaction');
}

/**
 * Places an order: the order row and its order.placed event (sequence 1) commit together, or
 * neither is written. Nothing here talks to the broker, so placing an order works while it is down.
 */
export async function placeOrder(pool: pg.Pool, order: NewOrder): Promise<PlacedOrder> {
  // TODO: in one transaction (inTransaction), insert the order into orders (id, customer_id, items as
  // JSON text, total_cents: orderTotalCents(order.items)), then write its order.placed event with
  // appendEvent(client, ...): aggregate ORDER, aggregate id the order id, sequence 1, payload
  // { orderId, customerId, items, totalCents }. Resolve with { orderId, event }.
  throw new Error('TODO: placeOrder');
}

/**
 * Cancels a placed order and appends its order.cancelled event, with the order's next sequence
 * number, in one transaction. Cancelling twice, even at the same moment, cancels once.
 */
export async function cancelOrder(pool: pg.Pool, orderId: string, reason: string): Promise<CancelOutcome> {
  // TODO: in one transaction, set the order's status to 'cancelled' and increment its version, in ONE
  // statement that only matches a placed order (UPDATE ... WHERE id = $1 AND status = 'placed'
  // RETURNING version). No row: tell 'not-found' from 'already-cancelled' with a SELECT. Otherwise
  // append its order.cancelled event with sequence = the new version and payload { orderId, reason },
  // and resolve with { status: 'cancelled', event }.
  throw new Error('TODO: cancelOrder');
}
