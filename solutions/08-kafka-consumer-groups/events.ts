import { z } from 'zod';

/**
 * Header names every order event carries. Consumers read the type and version here, before (and
 * without) parsing the body: they can skip events they do not handle, pick the right decoder for
 * the version, and tools can filter a topic without knowing every payload.
 */
export const EVENT_HEADERS = {
  type: 'event-type',
  version: 'event-version',
  correlationId: 'correlation-id',
} as const;

/** The payload version this service writes. A breaking change to a payload gets a new version. */
export const ORDER_EVENT_VERSION = 1;

export interface OrderLine {
  sku: string;
  quantity: number;
}

/** Every event names the order it belongs to; the order id is also the message key. */
interface OrderEventBase {
  /** Assigned once by the producer; consumers use it to recognise a redelivered event. */
  eventId: string;
  orderId: string;
}

export interface OrderPlaced extends OrderEventBase {
  type: 'order.placed';
  customerId: string;
  lines: OrderLine[];
  /** ISO-8601 timestamp. */
  placedAt: string;
}

export interface OrderAmended extends OrderEventBase {
  type: 'order.amended';
  /** The order's lines after the change (they replace the previous lines). */
  lines: OrderLine[];
  amendedAt: string;
}

export interface OrderCancelled extends OrderEventBase {
  type: 'order.cancelled';
  reason: string;
  cancelledAt: string;
}

export type OrderEvent = OrderPlaced | OrderAmended | OrderCancelled;
export type OrderEventType = OrderEvent['type'];

/** An event's body on the wire: everything but the type, which travels in a header. */
export type OrderEventBody<E extends OrderEvent = OrderEvent> = E extends OrderEvent ? Omit<E, 'type'> : never;

const orderLine = z.object({ sku: z.string().min(1), quantity: z.number().int().positive() });
const base = { eventId: z.string().min(1), orderId: z.string().min(1) };
const timestamp = z.iso.datetime({ offset: true });

/** Validates a body per event type, so a malformed message is rejected with a precise reason. */
export const ORDER_EVENT_BODIES = {
  'order.placed': z.object({ ...base, customerId: z.string().min(1), lines: z.array(orderLine).min(1), placedAt: timestamp }),
  'order.amended': z.object({ ...base, lines: z.array(orderLine).min(1), amendedAt: timestamp }),
  'order.cancelled': z.object({ ...base, reason: z.string(), cancelledAt: timestamp }),
} satisfies { [T in OrderEventType]: z.ZodType<OrderEventBody<Extract<OrderEvent, { type: T }>>> };

export function isOrderEventType(value: string): value is OrderEventType {
  return Object.hasOwn(ORDER_EVENT_BODIES, value);
}
