import { randomUUID } from 'node:crypto';

/**
 * The events the services exchange over RabbitMQ. Each is published to one topic exchange with
 * its type as the routing key; the envelope carries the id consumers deduplicate on and the id of
 * the request that caused it, so that a request can be followed across every service's log.
 */

export interface OrderLine {
  sku: string;
  quantity: number;
  unitPriceCents: number;
}

export interface EventData {
  UserRegistered: { userId: string; email: string; name: string };
  OrderPlaced: { orderId: string; userId: string; totalCents: number; lines: OrderLine[] };
  PaymentCaptured: { paymentId: string; orderId: string; userId: string; amountCents: number };
  OrderConfirmed: { orderId: string; userId: string; totalCents: number };
}

export type EventType = keyof EventData;

export const EVENT_TYPES = ['UserRegistered', 'OrderPlaced', 'PaymentCaptured', 'OrderConfirmed'] as const satisfies readonly EventType[];

export interface Envelope<T extends EventType = EventType> {
  eventId: string;
  type: T;
  occurredAt: string;
  /** The request that caused this event, if one did. */
  requestId: string | undefined;
  data: EventData[T];
}

export type AnyEnvelope = { [T in EventType]: Envelope<T> }[EventType];

export function newEvent<T extends EventType>(type: T, data: EventData[T], requestId: string | undefined): Envelope<T> {
  return { eventId: randomUUID(), type, occurredAt: new Date().toISOString(), requestId, data };
}

export function isEventType(value: unknown): value is EventType {
  return typeof value === 'string' && (EVENT_TYPES as readonly string[]).includes(value);
}

/** Parses a message body; undefined when it is not an envelope of a known type. */
export function parseEnvelope(body: Buffer): AnyEnvelope | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const candidate = parsed as Partial<Envelope> | null;
  if (!candidate || typeof candidate.eventId !== 'string' || !isEventType(candidate.type) || typeof candidate.data !== 'object' || candidate.data === null) {
    return undefined;
  }
  return { ...candidate, requestId: typeof candidate.requestId === 'string' ? candidate.requestId : undefined } as AnyEnvelope;
}
