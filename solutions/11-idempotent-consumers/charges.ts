import type { ClientBase } from 'pg';
import type { PaymentRequested } from './events.ts';

/**
 * The effect of a payment.requested event: takes the charge, on the connection of the transaction
 * that records the event as processed, and resolves with the charge's id.
 */
export type ChargeEffect = (db: ClientBase, subscriber: string, event: PaymentRequested) => Promise<string>;

/**
 * Records the charge in the payment service's ledger. (A real service would first have the payment
 * provider capture the money, passing the event id as the provider's idempotency key: see the
 * chapter.) Not idempotent on its own: run it twice and the customer pays twice.
 */
export const recordCharge: ChargeEffect = async (db, subscriber, event) => {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO charges (subscriber, event_id, order_id, customer_id, amount_cents, currency)
     VALUES ($1, $2, $3, $4, $5, $6)
     RETURNING id::text AS id`,
    [subscriber, event.eventId, event.orderId, event.customerId, event.amountCents, event.currency],
  );
  return rows[0]!.id;
};

/**
 * The charge an already-processed event made, so that a duplicate is answered with the original
 * result. Throws if there is none: then the processed row was committed without its charge.
 */
export async function findCharge(db: ClientBase, subscriber: string, eventId: string): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    'SELECT id::text AS id FROM charges WHERE subscriber = $1 AND event_id = $2 ORDER BY id LIMIT 1',
    [subscriber, eventId],
  );
  if (!rows[0]) {
    throw new Error(
      `event ${eventId} is recorded as processed by "${subscriber}" but has no charge: ` +
        'the processed row and the charge must commit in one transaction',
    );
  }
  return rows[0].id;
}
