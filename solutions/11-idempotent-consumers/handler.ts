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
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    // Claim the event. A second transaction claiming the same key waits here until the first one
    // ends: if it commits, this inserts nothing; if it rolls back, this claim wins.
    const claimed = await client.query(
      `INSERT INTO processed_events (subscriber, event_id) VALUES ($1, $2)
       ON CONFLICT (subscriber, event_id) DO NOTHING
       RETURNING event_id`,
      [subscriber, event.eventId],
    );
    const result: PaymentResult =
      claimed.rowCount === 1
        ? { status: 'charged', chargeId: await charge(client, subscriber, event) }
        : { status: 'duplicate', chargeId: await findCharge(client, subscriber, event.eventId) };
    await client.query('COMMIT');
    return result;
  } catch (error) {
    // Both rows go: the redelivery finds the event unclaimed and charges it then.
    await client.query('ROLLBACK').catch((rollbackError: unknown) => {
      broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    });
    throw error;
  } finally {
    // A connection whose ROLLBACK failed is in an unknown state: the pool discards it.
    client.release(broken);
  }
}
