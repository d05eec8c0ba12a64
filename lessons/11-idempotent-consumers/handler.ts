import type { Pool } from 'pg';
import { findCharge, recordCharge, type ChargeEffect } from './charges.ts';
import type { PaymentRequested } from './events.ts';

/** What one delivery did: took the charge, or recognised a duplicate and answered with the original. */
export interface PaymentResult {
  status: 'charged' | 'duplicate';
  chargeId: string;
}

/**
 * Applies a payment.requested event for `subscriber` at most once, however often it is delivered
 * and however many consumers receive it at the same moment. The processed-event row and the charge
 * commit together or not at all. Resolves after the COMMIT; rejects (with everything rolled back)
 * if the charge fails, so the delivery can be retried.
 */
export async function handlePaymentRequested(
  pool: Pool,
  subscriber: string,
  event: PaymentRequested,
  charge: ChargeEffect = recordCharge,
): Promise<PaymentResult> {
  // TODO: in ONE transaction on one connection from the pool (pool.connect(), BEGIN … COMMIT):
  // 1. claim the event: INSERT INTO processed_events (subscriber, event_id) … ON CONFLICT … DO NOTHING
  //    RETURNING event_id. A row back means this delivery is the first; no row means a duplicate.
  //    (Do not catch a unique violation instead: in PostgreSQL it aborts the whole transaction.)
  // 2. first delivery: `await charge(client, subscriber, event)` takes the charge and gives its id;
  //    duplicate: `await findCharge(client, subscriber, event.eventId)` gives the original charge's id;
  // 3. COMMIT, and resolve with { status: 'charged' | 'duplicate', chargeId }.
  // If anything fails, ROLLBACK (both rows go) and rethrow. Always release the connection.
  throw new Error('TODO: handlePaymentRequested');
}
