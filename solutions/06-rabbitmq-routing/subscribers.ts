/**
 * Who wants which order events, written as bindings: the table each exchange routes by.
 * Routing keys on the direct exchange are event types (`order.paid`); on the topic exchange they
 * are `order.<kind>.<region>`, plus `.express` for express orders (see orders.ts).
 */

export type KindSubscriber = 'billing' | 'shipping';
export type TopicSubscriber = 'euWarehouse' | 'standardDesk' | 'expressDesk' | 'audit';
export type HeadersSubscriber = 'euExpress' | 'riskReview';
export type Subscriber = KindSubscriber | TopicSubscriber | HeadersSubscriber;

/** A headers binding: the headers to compare, and whether all of them or any one must match. */
export interface HeadersBinding {
  'x-match': 'all' | 'any';
  [header: string]: string;
}

/** Direct exchange: a queue receives a message only if it is bound with exactly its routing key. */
export const KIND_BINDINGS: Record<KindSubscriber, readonly string[]> = {
  // Billing charges paid orders and pays refunds back.
  billing: ['order.paid', 'order.refunded'],
  // Shipping starts when an order is paid.
  shipping: ['order.paid'],
};

/** Topic exchange: `*` stands for exactly one word, `#` for zero or more words. */
export const TOPIC_BINDINGS: Record<TopicSubscriber, string> = {
  // The EU warehouse picks every order placed in the EU, standard or express.
  euWarehouse: 'order.placed.eu.#',
  // The standard desk takes placed standard orders in every region (express ones have their own desk).
  standardDesk: 'order.placed.*',
  // The express desk takes placed express orders in every region.
  expressDesk: 'order.placed.*.express',
  // Audit records every order event, whatever follows `order`.
  audit: 'order.#',
};

/** Headers exchange: the routing key is ignored; the message's headers are compared instead. */
export const HEADERS_BINDINGS: Record<HeadersSubscriber, HeadersBinding> = {
  // Same-day courier booking: EU orders that are express (both).
  euExpress: { 'x-match': 'all', region: 'eu', tier: 'express' },
  // Manual review: orders paid by invoice, or rated high-risk by the fraud score (either).
  riskReview: { 'x-match': 'any', payment: 'invoice', risk: 'high' },
};
