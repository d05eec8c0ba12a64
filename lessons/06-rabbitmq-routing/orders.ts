/** Order events, and the three ways this lesson routes them: by type, by topic, by headers. */

export const ORDER_KINDS = ['placed', 'paid', 'shipped', 'cancelled', 'refunded'] as const;
export type OrderKind = (typeof ORDER_KINDS)[number];

export type Region = 'eu' | 'us' | 'apac';

export interface OrderEvent {
  eventId: string;
  orderId: string;
  kind: OrderKind;
  region: Region;
  /** Express orders are picked and shipped the same day, by a desk of their own. */
  tier: 'standard' | 'express';
  payment: 'card' | 'invoice';
  /** The fraud score's verdict. */
  risk: 'low' | 'high';
  totalCents: number;
  /** ISO-8601 timestamp. */
  occurredAt: string;
}

export function encodeOrderEvent(event: OrderEvent): Buffer {
  return Buffer.from(JSON.stringify(event));
}

/** The routing key on the direct exchange: the event type, e.g. `order.paid`. */
export function kindKey(event: OrderEvent): string {
  return `order.${event.kind}`;
}

/**
 * The routing key on the topic exchange: dot-separated words, most general first.
 * `order.<kind>.<region>`, with one more word for express orders: `order.placed.eu.express`.
 */
export function topicKey(event: OrderEvent): string {
  const key = `order.${event.kind}.${event.region}`;
  return event.tier === 'express' ? `${key}.express` : key;
}

/** The headers the headers exchange matches on. Strings only: the broker compares type and value. */
export function orderHeaders(event: OrderEvent): Record<string, string> {
  return { kind: event.kind, region: event.region, tier: event.tier, payment: event.payment, risk: event.risk };
}
