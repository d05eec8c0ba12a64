import type { CAPTURE_PAYMENT, MessageName, ORDER_PLACED, PAYMENT_CAPTURED } from './catalog.ts';

/**
 * The TypeScript view of the contracts in contracts/. These types help the code that produces and
 * handles messages; they are not the contract. The JSON Schema files are: they are what other
 * services (in any language) read, what is checked at run time on both sides of the broker, and
 * what a version number refers to. Keep these types in step with them.
 */

/**
 * A CloudEvent 1.0 as the shop sends it: the JSON event format, in structured content mode (the
 * whole event is the message body). Attribute names are lowercase letters and digits only, as the
 * specification requires, which is why the extensions are `correlationid` and `causationid`.
 */
export interface CloudEvent<T = unknown> {
  specversion: '1.0';
  id: string;
  /** URI-reference of the context the occurrence happened in, e.g. `/checkout`. */
  source: string;
  /** Name and contract version: `com.example.orders.order-placed.v3`. */
  type: string;
  /** RFC 3339. */
  time: string;
  datacontenttype: 'application/json';
  /** The `$id` of the contract `data` follows. */
  dataschema: string;
  /** The business flow this message belongs to, copied from message to message. */
  correlationid: string;
  /** The `id` of the message that directly caused this one; absent on the first message of a flow. */
  causationid?: string;
  data: T;
}

export interface Money {
  /** In the currency's minor unit: 4250 is 42.50. */
  amountMinor: number;
  /** ISO 4217, e.g. `EUR`. */
  currency: string;
}

/** order-placed v1 (2021): `amount` is in euro cents. */
export interface OrderPlacedV1 {
  orderId: string;
  customerId: string;
  amount: number;
}

/** order-placed v2 (2023): the total carries its currency. */
export interface OrderPlacedV2 {
  orderId: string;
  customerId: string;
  total: Money;
}

/** order-placed v3 (2025, current): the customer is an object; its email is optional. */
export interface OrderPlacedV3 {
  orderId: string;
  customer: { id: string; email?: string };
  total: Money;
}

export interface CapturePaymentV1 {
  orderId: string;
  total: Money;
}

export interface PaymentCapturedV1 {
  orderId: string;
  paymentId: string;
  total: Money;
}

/** The payload of the latest version of each message: what producers publish and handlers receive. */
export interface LatestData {
  [ORDER_PLACED]: OrderPlacedV3;
  [CAPTURE_PAYMENT]: CapturePaymentV1;
  [PAYMENT_CAPTURED]: PaymentCapturedV1;
}

/** Compile-time guard: every name in the catalog has a latest payload type. */
export type LatestOf<N extends MessageName> = LatestData[N];
