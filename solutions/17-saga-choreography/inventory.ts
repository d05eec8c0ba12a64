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
  const { orderId } = order;
  // Claim the order's row first: a concurrent release of the same order waits for this
  // transaction instead of racing it.
  const claimed = await tx.query("INSERT INTO reservations (order_id, status) VALUES ($1, 'RESERVED') ON CONFLICT (order_id) DO NOTHING", [orderId]);
  if (claimed.rowCount === 0) {
    const { rows } = await tx.query<{ status: string }>('SELECT status FROM reservations WHERE order_id = $1 FOR UPDATE', [orderId]);
    if (rows[0]?.status === 'CANCELLED') {
      return [newEvent('stock.rejected', { orderId, reason: 'the order was cancelled before its stock was reserved' })];
    }
    return [];
  }

  // Lock the products in one order (by SKU), so two reservations never deadlock each other.
  const skus = order.lines.map((line) => line.sku);
  const { rows: products } = await tx.query<{ sku: string; available: number }>(
    'SELECT sku, available FROM products WHERE sku = ANY($1::text[]) ORDER BY sku FOR UPDATE',
    [skus],
  );
  const available = new Map(products.map((product) => [product.sku, product.available]));
  const shortages = order.lines
    .filter((line) => (available.get(line.sku) ?? 0) < line.quantity)
    .map((line) => `${line.sku} (${line.quantity} wanted, ${available.get(line.sku) ?? 0} available)`);
  if (shortages.length > 0) {
    const reason = `out of stock: ${shortages.join(', ')}`;
    await tx.query("UPDATE reservations SET status = 'REJECTED', reason = $2, updated_at = now() WHERE order_id = $1", [orderId, reason]);
    return [newEvent('stock.rejected', { orderId, reason })];
  }

  for (const line of order.lines) {
    await tx.query('UPDATE products SET available = available - $2 WHERE sku = $1', [line.sku, line.quantity]);
    await tx.query('INSERT INTO reservation_lines (order_id, sku, quantity) VALUES ($1, $2, $3)', [orderId, line.sku, line.quantity]);
  }
  return [newEvent('stock.reserved', { orderId, customerId: order.customerId, lines: order.lines, amountCents: order.amountCents })];
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
  const tombstone = await tx.query("INSERT INTO reservations (order_id, status, reason) VALUES ($1, 'CANCELLED', $2) ON CONFLICT (order_id) DO NOTHING", [orderId, reason]);
  if (tombstone.rowCount === 1) return [];

  const { rows } = await tx.query<{ status: string }>('SELECT status FROM reservations WHERE order_id = $1 FOR UPDATE', [orderId]);
  if (rows[0]?.status !== 'RESERVED') return [];

  await tx.query(
    `UPDATE products SET available = products.available + line.quantity
       FROM reservation_lines AS line
      WHERE line.order_id = $1 AND products.sku = line.sku`,
    [orderId],
  );
  await tx.query("UPDATE reservations SET status = 'RELEASED', reason = $2, updated_at = now() WHERE order_id = $1", [orderId, reason]);
  return [newEvent('stock.released', { orderId, reason })];
}
