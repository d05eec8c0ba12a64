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
  const orderId = randomUUID();
  return inTransaction(pool, async (tx) => {
    const { rows } = await tx.query<OrderRow>(
      `INSERT INTO orders (order_id, customer_id, lines, amount_cents, deadline_at)
       VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::double precision / 1000))
       RETURNING ${ORDER_COLUMNS}`,
      [orderId, request.customerId, JSON.stringify(request.lines), request.amountCents, options.deadlineMs],
    );
    await appendToOutbox(tx, [newEvent('order.placed', { orderId, ...request })]);
    return toView(rows[0]!);
  });
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
  switch (event.type) {
    case 'payment.completed':
      return (await settle(tx, event.orderId, 'APPROVED', null)) ? [newEvent('order.approved', { orderId: event.orderId })] : [];
    case 'stock.rejected':
    case 'stock.released':
      return (await settle(tx, event.orderId, 'REJECTED', event.reason)) ? [newEvent('order.rejected', { orderId: event.orderId, reason: event.reason })] : [];
    default:
      return [];
  }
}

/**
 * The deadline: rejects every order still PENDING past its deadline_at with reason 'timeout',
 * and writes order.rejected for each to the outbox in the same transaction, so the other
 * services undo their steps. Returns the ids of the orders it rejected.
 */
export async function rejectOverdueOrders(pool: pg.Pool): Promise<string[]> {
  return inTransaction(pool, async (tx) => {
    // SKIP LOCKED: an order an event is settling right now is left to that event.
    const { rows } = await tx.query<{ order_id: string }>(
      `UPDATE orders SET status = 'REJECTED', reason = 'timeout', updated_at = now()
        WHERE order_id IN (SELECT order_id FROM orders
                            WHERE status = 'PENDING' AND deadline_at <= now()
                            ORDER BY deadline_at LIMIT 100 FOR UPDATE SKIP LOCKED)
        RETURNING order_id`,
    );
    await appendToOutbox(tx, rows.map((row) => newEvent('order.rejected', { orderId: row.order_id, reason: 'timeout' })));
    return rows.map((row) => row.order_id);
  });
}

/** Moves a PENDING order to its final status; false when it was settled already. */
async function settle(tx: Tx, orderId: string, status: 'APPROVED' | 'REJECTED', reason: string | null): Promise<boolean> {
  const { rowCount } = await tx.query(
    "UPDATE orders SET status = $2, reason = $3, updated_at = now() WHERE order_id = $1 AND status = 'PENDING'",
    [orderId, status, reason],
  );
  return rowCount === 1;
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
