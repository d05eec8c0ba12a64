import { randomUUID } from 'node:crypto';
import { z } from 'zod';

/**
 * The events of the order saga. Each service publishes the outcome of its own step as an event on
 * one topic exchange, with the event type as the routing key, and reacts to the events of others.
 * No service calls another: these events are the whole contract between them.
 *
 *   order.placed        order service      a customer placed an order (the saga starts)
 *   stock.reserved      inventory service  the stock for every line is set aside
 *   stock.rejected      inventory service  not enough stock: nothing was set aside
 *   payment.completed   payment service    the card was charged
 *   payment.failed      payment service    the card was declined: nothing was charged
 *   stock.released      inventory service  compensation: set-aside stock is back on the shelf
 *   payment.refunded    payment service    compensation: a charge was paid back
 *   order.approved      order service      the saga succeeded
 *   order.rejected      order service      the saga failed, for the reason given
 */

export const MAX_AMOUNT_CENTS = 100_000_000;

export const OrderLineSchema = z.object({
  sku: z.string().min(1).max(64),
  quantity: z.number().int().positive().max(10_000),
});

export type OrderLine = z.infer<typeof OrderLineSchema>;

const lines = z
  .array(OrderLineSchema)
  .min(1)
  .max(100)
  .refine((all) => new Set(all.map((line) => line.sku)).size === all.length, 'each SKU may appear on one line only');
const amountCents = z.number().int().positive().max(MAX_AMOUNT_CENTS);
const reason = z.string().min(1).max(1_000);
const customerId = z.string().min(1).max(100);

/** What every event carries: its own id (to recognise a redelivery) and the saga it belongs to. */
const envelope = {
  /** Assigned once, when the event is written; a redelivered or republished event keeps it. */
  eventId: z.uuid(),
  /** The order is the saga: every event of one saga names the same order. */
  orderId: z.uuid(),
  /** ISO-8601 timestamp. */
  occurredAt: z.iso.datetime({ offset: true }),
};

export const SagaEventSchema = z.discriminatedUnion('type', [
  z.object({ ...envelope, type: z.literal('order.placed'), customerId, lines, amountCents }),
  // Carries what the payment step needs, so the payment service depends on no one's database.
  z.object({ ...envelope, type: z.literal('stock.reserved'), customerId, lines, amountCents }),
  z.object({ ...envelope, type: z.literal('stock.rejected'), reason }),
  z.object({ ...envelope, type: z.literal('payment.completed'), amountCents }),
  z.object({ ...envelope, type: z.literal('payment.failed'), reason }),
  z.object({ ...envelope, type: z.literal('stock.released'), reason }),
  z.object({ ...envelope, type: z.literal('payment.refunded'), amountCents, reason }),
  z.object({ ...envelope, type: z.literal('order.approved') }),
  z.object({ ...envelope, type: z.literal('order.rejected'), reason }),
]);

export type SagaEvent = z.infer<typeof SagaEventSchema>;
export type SagaEventType = SagaEvent['type'];
export type EventOf<T extends SagaEventType> = Extract<SagaEvent, { type: T }>;
/** The facts of an event, without the fields newEvent fills in. */
export type EventFacts<T extends SagaEventType> = Omit<EventOf<T>, 'type' | 'eventId' | 'occurredAt'>;

export const SAGA_EVENT_TYPES = SagaEventSchema.options.map((option) => option.shape.type.value);

/** A new event with a fresh id and the current time: newEvent('stock.rejected', { orderId, reason }). */
export function newEvent<T extends SagaEventType>(type: T, facts: EventFacts<T>): EventOf<T> {
  return { ...facts, type, eventId: randomUUID(), occurredAt: new Date().toISOString() } as unknown as EventOf<T>;
}

export function encodeEvent(event: SagaEvent): Buffer {
  return Buffer.from(JSON.stringify(event));
}

export type ParsedEvent = { ok: true; event: SagaEvent } | { ok: false; reason: string };

/** Reads a message body; bad input becomes a reason to log, never an exception. */
export function parseEvent(content: Buffer): ParsedEvent {
  let json: unknown;
  try {
    json = JSON.parse(content.toString('utf8'));
  } catch {
    return { ok: false, reason: `not JSON: ${JSON.stringify(content.toString('utf8').slice(0, 80))}` };
  }
  const parsed = SagaEventSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`);
    return { ok: false, reason: problems.join('; ') };
  }
  return { ok: true, event: parsed.data };
}

/** The body of POST /orders: what a customer asks for. */
export const OrderRequestSchema = z.object({ customerId, lines, amountCents });

export type OrderRequest = z.infer<typeof OrderRequestSchema>;
