import type { Tx } from './db.ts';
import { newEvent, type EventOf, type SagaEvent, type SagaEventType } from './events.ts';
import type { PaymentProvider } from './payment-provider.ts';

/**
 * The payment service's part of the saga: one step (charge the card once the stock is reserved)
 * and its compensation (refund it). Like inventory.ts, it keeps at most one row per order and
 * makes no assumption about what it heard before: a refund may come before the charge, or twice.
 */

/** What the payment service's queue is bound to. It never hears of an order whose stock was rejected. */
export const PAYMENT_REACTS_TO = ['stock.reserved', 'order.rejected'] as const satisfies readonly SagaEventType[];

export function paymentReactions(provider: PaymentProvider) {
  return async (tx: Tx, event: SagaEvent): Promise<SagaEvent[]> => {
    switch (event.type) {
      case 'stock.reserved':
        return chargeOrder(tx, event, provider);
      case 'order.rejected':
        return refundOrder(tx, event.orderId, `order rejected: ${event.reason}`, provider);
      default:
        return [];
    }
  };
}

/** The step: charges the order's amount, once per order. */
export async function chargeOrder(tx: Tx, reserved: EventOf<'stock.reserved'>, provider: PaymentProvider): Promise<SagaEvent[]> {
  const { orderId, amountCents } = reserved;
  const claimed = await tx.query(
    "INSERT INTO payments (order_id, customer_id, amount_cents, status) VALUES ($1, $2, $3, 'CHARGED') ON CONFLICT (order_id) DO NOTHING",
    [orderId, reserved.customerId, amountCents],
  );
  if (claimed.rowCount === 0) {
    const { rows } = await tx.query<{ status: string }>('SELECT status FROM payments WHERE order_id = $1 FOR UPDATE', [orderId]);
    // A refund overtook the charge (the saga was rejected meanwhile): never charge it now.
    if (rows[0]?.status === 'CANCELLED') return [newEvent('payment.failed', { orderId, reason: 'the order was cancelled before it was charged' })];
    return [];
  }
  // The idempotency key makes a charge retried after a crash (this transaction never committed)
  // one charge at the provider.
  const result = await provider.charge({ idempotencyKey: orderId, amountCents });
  if (!result.approved) {
    await tx.query("UPDATE payments SET status = 'DECLINED', reason = $2, updated_at = now() WHERE order_id = $1", [orderId, result.reason]);
    return [newEvent('payment.failed', { orderId, reason: result.reason })];
  }
  return [newEvent('payment.completed', { orderId, amountCents })];
}

/** The compensation: pays a charge back, whatever happened before. */
export async function refundOrder(tx: Tx, orderId: string, reason: string, provider: PaymentProvider): Promise<SagaEvent[]> {
  const tombstone = await tx.query("INSERT INTO payments (order_id, status, reason) VALUES ($1, 'CANCELLED', $2) ON CONFLICT (order_id) DO NOTHING", [orderId, reason]);
  if (tombstone.rowCount === 1) return [];
  const { rows } = await tx.query<{ status: string; amount_cents: number }>('SELECT status, amount_cents FROM payments WHERE order_id = $1 FOR UPDATE', [orderId]);
  const payment = rows[0];
  // DECLINED, REFUNDED or CANCELLED: there is no charge to pay back.
  if (payment?.status !== 'CHARGED') return [];
  await provider.refund({ idempotencyKey: orderId, amountCents: payment.amount_cents });
  await tx.query("UPDATE payments SET status = 'REFUNDED', reason = $2, updated_at = now() WHERE order_id = $1", [orderId, reason]);
  return [newEvent('payment.refunded', { orderId, amountCents: payment.amount_cents, reason })];
}
