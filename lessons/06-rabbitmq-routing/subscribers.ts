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
  // TODO: billing charges paid orders and pays refunds back (two event types).
  billing: [],
  // TODO: shipping starts when an order is paid.
  shipping: [],
};

/** Topic exchange: `*` stands for exactly one word, `#` for zero or more words. */
export const TOPIC_BINDINGS: Record<TopicSubscriber, string> = {
  // TODO: the EU warehouse picks every order placed in the EU, standard or express.
  euWarehouse: '',
  // TODO: the standard desk takes placed standard orders in every region (express ones have their own desk).
  standardDesk: '',
  // TODO: the express desk takes placed express orders in every region.
  expressDesk: '',
  // TODO: audit records every order event, whatever follows `order`.
  audit: '',
};

/** Headers exchange: the routing key is ignored; the message's headers are compared instead. */
export const HEADERS_BINDINGS: Record<HeadersSubscriber, HeadersBinding> = {
  // TODO: same-day courier booking: EU orders that are express (both). Headers: see orderHeaders() in orders.ts.
  euExpress: { 'x-match': 'all' },
  // TODO: manual review: orders paid by invoice, or rated high-risk by the fraud score (either).
  riskReview: { 'x-match': 'all' },
};
