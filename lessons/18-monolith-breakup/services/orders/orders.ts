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
  throw new Error('TODO: placeOrder');
}

/**
 * Confirms the order a PaymentCaptured is about, and announces it with OrderConfirmed, in one
 * transaction. Idempotent: the same event delivered twice (a redelivery after a crash, a relay that
 * published twice) finds the order already confirmed and changes nothing. Returns whether it did.
 */
export async function confirmOrder(pool: pg.Pool, payment: Envelope<'PaymentCaptured'>): Promise<boolean> {
  throw new Error('TODO: confirmOrder');
}
