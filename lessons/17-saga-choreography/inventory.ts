import type { Tx } from './db.ts';
import { newEvent, type EventOf, type SagaEvent, type SagaEventType } from './events.ts';

/**
 * The inventory service's part of the saga: one step (reserve the order's stock) and its
 * compensation (release it). Its reservations table has at most one row per order: RESERVED,
 * REJECTED, RELEASED, or CANCELLED (see migrations/inventory/001_stock.sql).
 */

/** What the inventory service's queue is bound to. */
export const INVENTORY_REACTS_TO = ['order.placed', 'payment.failed', 'order.rejected'] as const satisfies readonly SagaEventType[];

export async function reactAsInventory(tx: Tx, event: SagaEvent): Promise<SagaEvent[]> {
  switch (event.type) {
    case 'order.placed':
      return reserveStock(tx, event);
    // The step after ours failed: undo ours. The order service waits for our stock.released.
    case 'payment.failed':
      return releaseStock(tx, event.orderId, `payment failed: ${event.reason}`);
    // The saga was given up (its deadline passed, or it failed elsewhere): undo ours, if any.
    case 'order.rejected':
      return releaseStock(tx, event.orderId, `order rejected: ${event.reason}`);
    default:
      return [];
  }
}

/**
 * The step: sets aside the stock for every line of the order, or for none of them.
 * - The order already has a row: a tombstone (CANCELLED) means a release came first, so the
 *   reservation is refused with stock.rejected; any other row means this order was answered
 *   already, and nothing more happens.
 * - Some line asks for more than is available (or for an unknown SKU): a REJECTED row, no stock
 *   taken, and stock.rejected with the shortages as its reason.
 * - Otherwise: the stock is taken, a RESERVED row and its lines are written, and stock.reserved
 *   carries the order's customer, lines and amount on to the payment step.
 */
export async function reserveStock(tx: Tx, order: EventOf<'order.placed'>): Promise<SagaEvent[]> {
  // TODO:
  // 1. Claim the order's row: INSERT INTO reservations (order_id, status) VALUES (..., 'RESERVED')
  //    ON CONFLICT (order_id) DO NOTHING. If no row was inserted, the order has a row already:
  //    read its status; CANCELLED means refuse with stock.rejected, anything else means return [].
  // 2. Read the products of the order's lines with SELECT ... FOR UPDATE (ORDER BY sku, so two
  //    reservations lock in the same order), and find the lines that ask for more than is available.
  // 3. Shortages: set the row REJECTED with the reason, take nothing, return stock.rejected.
  // 4. Otherwise, for each line: take the quantity from products.available and insert a
  //    reservation_lines row. Return stock.reserved with the order's customerId, lines and amountCents.
  // Build events with newEvent('stock.reserved', { orderId, ... }).
  throw new Error('TODO: reserveStock');
}

/**
 * The compensation: gives the order's stock back, whatever happened before.
 * - RESERVED: every line goes back on the shelf, the row becomes RELEASED, and stock.released
 *   tells the saga the compensation is done.
 * - No row at all (the release overtook the reservation): a CANCELLED tombstone, so the late
 *   reservation is refused; nothing was taken, so nothing is given back.
 * - RELEASED, REJECTED or CANCELLED: nothing is set aside; releasing again is a no-op.
 */
export async function releaseStock(tx: Tx, orderId: string, reason: string): Promise<SagaEvent[]> {
  // TODO:
  // 1. Try to leave a tombstone: INSERT INTO reservations (order_id, status, reason) VALUES
  //    (..., 'CANCELLED', ...) ON CONFLICT (order_id) DO NOTHING. If it was inserted, nothing was
  //    reserved: return [] (never throw, never give back stock that was not taken).
  // 2. Otherwise read the row's status (FOR UPDATE). Anything but RESERVED: return [].
  // 3. RESERVED: add each reservation_lines quantity back to products.available, set the row
  //    RELEASED with the reason, and return stock.released.
  throw new Error('TODO: releaseStock');
}
