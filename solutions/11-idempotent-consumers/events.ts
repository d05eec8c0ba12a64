import type { Options } from 'amqplib';
import { z } from 'zod';

/**
 * The checkout asks the payment service to charge a customer for an order. The producer assigns
 * `eventId` once, when it creates the event: every delivery and every resend of this event carries
 * the same id, and that id is what makes a duplicate recognisable.
 */
export const PaymentRequestedSchema = z.object({
  eventId: z.uuid(),
  type: z.literal('payment.requested'),
  /** ISO-8601 timestamp. */
  occurredAt: z.iso.datetime(),
  orderId: z.string().min(1),
  customerId: z.string().min(1),
  amountCents: z.number().int().positive(),
  /** ISO 4217, e.g. "EUR". */
  currency: z.string().regex(/^[A-Z]{3}$/, 'a three-letter ISO 4217 code'),
});

export type PaymentRequested = z.infer<typeof PaymentRequestedSchema>;

export function encodePaymentRequested(event: PaymentRequested): Buffer {
  return Buffer.from(JSON.stringify(event));
}

/** How a producer publishes the event: persistent, and with the event id as the AMQP message id. */
export function publishOptions(event: PaymentRequested): Options.Publish {
  return {
    persistent: true,
    contentType: 'application/json',
    messageId: event.eventId,
    type: event.type,
    timestamp: Math.floor(Date.parse(event.occurredAt) / 1000),
  };
}

export type ParsedPayment = { ok: true; event: PaymentRequested } | { ok: false; reason: string };

/**
 * Reads a delivered message; bad input becomes a reason to log, never an exception. A message id
 * that disagrees with the body's event id makes the message malformed: one of them is wrong, and
 * deduplicating on either could charge twice or skip a payment.
 */
export function parsePaymentMessage(content: Buffer, messageId?: unknown): ParsedPayment {
  let json: unknown;
  try {
    json = JSON.parse(content.toString('utf8'));
  } catch {
    return { ok: false, reason: `not JSON: ${JSON.stringify(content.toString('utf8').slice(0, 80))}` };
  }
  const parsed = PaymentRequestedSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`);
    return { ok: false, reason: problems.join('; ') };
  }
  if (messageId !== undefined && messageId !== parsed.data.eventId) {
    return { ok: false, reason: `message id ${JSON.stringify(messageId)} is not the event id ${parsed.data.eventId}` };
  }
  return { ok: true, event: parsed.data };
}
