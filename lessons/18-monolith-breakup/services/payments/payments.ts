import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { inTransaction } from '../../platform/db.ts';
import { newEvent, type Envelope } from '../../platform/events.ts';
import { appendToOutbox } from '../../platform/outbox.ts';

/**
 * The payments side of the flow: an OrderPlaced arrives from the queue, the payment is captured
 * (the course's payment provider accepts every amount) and PaymentCaptured goes out through the
 * outbox. The orders service is never called.
 */

/**
 * Captures the payment of an order and writes PaymentCaptured to the outbox, in one transaction.
 * Idempotent: an OrderPlaced delivered twice (or two at once, to two instances) captures one
 * payment and announces it once. Returns whether this call captured it.
 */
export async function capturePayment(pool: pg.Pool, order: Envelope<'OrderPlaced'>): Promise<boolean> {
  throw new Error('TODO: capturePayment');
}
