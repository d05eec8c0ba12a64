import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { inTransaction, type Tx } from './db.ts';
import { newEvent, type OrderRequest, type SagaEvent, type SagaEventType } from './events.ts';
import { appendToOutbox } from './outbox.ts';

/**
 * The order service's part of the saga. It starts the saga and decides its outcome, but it
 * commands no one: it publishes order.placed and learns what happened from the events the other
 * services publish. An order is PENDING until one of them settles it, and APPROVED and REJECTED
 * are final.
 */

export type OrderStatus = 'PENDING' | 'APPROVED' | 'REJECTED';

export interface OrderView {
  orderId: string;
  status: OrderStatus;
  reason: string | null;
  placedAt: string;
  deadlineAt: string;
}

/**
 * What the order service's queue is bound to. Not payment.failed: after a failed payment the
 * saga is over only once the stock is given back, and stock.released says so.
 */
export const ORDER_REACTS_TO = ['stock.rejected', 'payment.completed', 'stock.released'] as const satisfies readonly SagaEventType[];

/**
 * Accepts an order: stores it PENDING with its deadline (`deadlineMs` from now) and writes
 * order.placed to the outbox, in one transaction. It answers as soon as that commits, whatever
 * the other services are doing: whether they are up or down, fast or slow, is not its business.
 */
export async function placeOrder(pool: pg.Pool, request: OrderRequest, options: { deadlineMs: number }): Promise<OrderView> {
  // TODO: in one transaction (inTransaction), with a new order id (randomUUID()):
  // - INSERT INTO orders (order_id, customer_id, lines, amount_cents, deadline_at), the lines as
  //   JSON text and deadline_at = now() + make_interval(secs => deadlineMs / 1000.0) (the
  //   database's clock, which every instance of the service shares), RETURNING ORDER_COLUMNS;
  // - appendToOutbox(tx, [newEvent('order.placed', { orderId, ...request })]).
  // Return toView(row). Do not wait for anything else: the saga goes on without this request.
  throw new Error('TODO: placeOrder');
}

/**
 * The order's reactions, each applied only to a PENDING order (a late event never reopens a
 * settled saga):
 * - stock.rejected: REJECTED with the event's reason; publishes order.rejected.
 * - payment.completed: APPROVED; publishes order.approved.
 * - stock.released: the compensation after a failed payment is done: REJECTED with the
 *   event's reason; publishes order.rejected.
 */
export async function reactAsOrder(tx: Tx, event: SagaEvent): Promise<SagaEvent[]> {
  // TODO: for each of the three event types above, UPDATE orders SET status, reason, updated_at
  // ... WHERE order_id = $1 AND status = 'PENDING'. Publish (return) order.approved or
  // order.rejected only when that UPDATE changed a row; return [] otherwise, and for other types.
  throw new Error('TODO: reactAsOrder');
}

/**
 * The deadline: rejects every order still PENDING past its deadline_at with reason 'timeout',
 * and writes order.rejected for each to the outbox in the same transaction, so the other
 * services undo their steps. Returns the ids of the orders it rejected.
 */
export async function rejectOverdueOrders(pool: pg.Pool): Promise<string[]> {
  // TODO: in one transaction, UPDATE orders SET status = 'REJECTED', reason = 'timeout', updated_at
  // = now() for the orders that are PENDING with deadline_at <= now() (at most 100 at a time,
  // selected FOR UPDATE SKIP LOCKED), RETURNING order_id; write order.rejected with reason
  // 'timeout' for each to the outbox; return their ids.
  throw new Error('TODO: rejectOverdueOrders');
}

/** The order as GET /orders/:id shows it, or undefined. */
export async function findOrder(pool: pg.Pool, orderId: string): Promise<OrderView | undefined> {
  const { rows } = await pool.query<OrderRow>(`SELECT ${ORDER_COLUMNS} FROM orders WHERE order_id = $1`, [orderId]);
  return rows[0] ? toView(rows[0]) : undefined;
}

interface OrderRow {
  order_id: string;
  status: OrderStatus;
  reason: string | null;
  placed_at: Date;
  deadline_at: Date;
}

const ORDER_COLUMNS = 'order_id, status, reason, placed_at, deadline_at';

function toView(row: OrderRow): OrderView {
  return { orderId: row.order_id, status: row.status, reason: row.reason, placedAt: row.placed_at.toISOString(), deadlineAt: row.deadline_at.toISOString() };
}
