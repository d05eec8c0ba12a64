import { z } from 'zod';

/** One line of an order, as the client sends it. */
export const OrderItemSchema = z.object({
  sku: z.string().min(1),
  quantity: z.number().int().positive(),
  unitPriceCents: z.number().int().positive(),
});

/** What POST /orders accepts. The client picks the order id, so a retried request cannot order twice. */
export const NewOrderSchema = z.object({
  orderId: z.uuid(),
  customerId: z.string().min(1),
  items: z.array(OrderItemSchema).min(1),
});

export type OrderItem = z.infer<typeof OrderItemSchema>;
export type NewOrder = z.infer<typeof NewOrderSchema>;

export function orderTotalCents(items: readonly OrderItem[]): number {
  return items.reduce((total, item) => total + item.quantity * item.unitPriceCents, 0);
}

export const ORDER = 'order';
export const ORDER_PLACED = 'order.placed';
export const ORDER_CANCELLED = 'order.cancelled';

export interface OrderPlacedPayload {
  orderId: string;
  customerId: string;
  items: OrderItem[];
  totalCents: number;
}

export interface OrderCancelledPayload {
  orderId: string;
  reason: string;
}

/** An event as a command writes it, before it has an id: see appendEvent in outbox.ts. */
export interface EventDraft {
  aggregateType: string;
  aggregateId: string;
  /** 1 for the aggregate's first event, then 2, 3... without gaps. */
  sequence: number;
  type: string;
  payload: Record<string, unknown>;
}

/** An event in the outbox, and exactly what the relay publishes. */
export interface OutboxEvent extends EventDraft {
  /** Assigned once, when the event is written; every copy of the message carries it. */
  eventId: string;
  /** ISO-8601, when the transaction wrote it. */
  occurredAt: string;
}

/** The message body: the event as JSON. Consumers deduplicate on `eventId` and order on `sequence`. */
export const EventEnvelopeSchema = z.object({
  eventId: z.uuid(),
  aggregateType: z.string().min(1),
  aggregateId: z.string().min(1),
  sequence: z.number().int().positive(),
  type: z.string().min(1),
  occurredAt: z.iso.datetime({ offset: true }),
  payload: z.record(z.string(), z.unknown()),
});

export interface AmqpMessage {
  routingKey: string;
  content: Buffer;
  options: {
    persistent: true;
    messageId: string;
    type: string;
    contentType: 'application/json';
    timestamp: number;
    headers: { 'aggregate-id': string; sequence: number };
  };
}

/**
 * The message for an event: routed by its type, persistent (written to disk in a durable queue),
 * and carrying its event id as the AMQP message id, so that every copy of it, however many times
 * the relay has to publish it, is recognisably the same event.
 */
export function messageFor(event: OutboxEvent): AmqpMessage {
  const envelope = {
    eventId: event.eventId,
    aggregateType: event.aggregateType,
    aggregateId: event.aggregateId,
    sequence: event.sequence,
    type: event.type,
    occurredAt: event.occurredAt,
    payload: event.payload,
  };
  return {
    routingKey: event.type,
    content: Buffer.from(JSON.stringify(envelope)),
    options: {
      persistent: true,
      messageId: event.eventId,
      type: event.type,
      contentType: 'application/json',
      timestamp: Math.floor(Date.parse(event.occurredAt) / 1000),
      headers: { 'aggregate-id': event.aggregateId, sequence: event.sequence },
    },
  };
}

export type ParsedEnvelope = { ok: true; event: OutboxEvent } | { ok: false; reason: string };

/** Reads a message body; bad input becomes a reason, never an exception. */
export function parseEnvelope(content: Buffer): ParsedEnvelope {
  let json: unknown;
  try {
    json = JSON.parse(content.toString('utf8'));
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  const parsed = EventEnvelopeSchema.safeParse(json);
  if (!parsed.success) {
    return { ok: false, reason: parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ') };
  }
  return { ok: true, event: parsed.data };
}
