import { dataschemaOf, latestVersion, ORDER_PLACED, typeOf, type MessageName } from './catalog.ts';
import type { CloudEvent, OrderPlacedV1, OrderPlacedV2, OrderPlacedV3 } from './events.ts';

/**
 * Upcasters turn the payload of one version into the next, so handlers are written once, against
 * the latest version, and old events (in queues, in archives, from producers not yet upgraded)
 * still reach them. Each is a pure function: it returns a new object and never changes its input,
 * which may be shared (logged, parked, retried) by its caller.
 */

/** v1 → v2: v1 amounts were euro cents, always; v2 says so with an explicit currency. */
export function orderPlacedV1ToV2(data: OrderPlacedV1): OrderPlacedV2 {
  // TODO: the same order as v2: `amount` (euro cents, as the v1 contract says) becomes
  // total: { amountMinor, currency }. Return a new object; do not change `data`.
  throw new Error('TODO: orderPlacedV1ToV2');
}

/** v2 → v3: the customer becomes an object. Orders placed before v3 have no email, and none is made up. */
export function orderPlacedV2ToV3(data: OrderPlacedV2): OrderPlacedV3 {
  // TODO: the same order as v3: `customerId` becomes customer: { id }. Return a new object.
  throw new Error('TODO: orderPlacedV2ToV3');
}

type Upcaster = (data: never) => unknown;

/** For each message, the upcaster from version N to N + 1, keyed by N. */
export const UPCASTERS: Partial<Record<MessageName, Readonly<Record<number, Upcaster>>>> = {
  [ORDER_PLACED]: { 1: orderPlacedV1ToV2, 2: orderPlacedV2ToV3 },
};

/**
 * The message in the latest version of its contract: the upcasters applied one after the other
 * from `version` (v1 → v2 → v3), and `type` and `dataschema` changed to say what `data` now is.
 * Every other attribute (id, source, time, correlationid, causationid) stays as it was: it is still
 * the same event. A message already in the latest version comes back as it is.
 */
export function upcast(message: CloudEvent, name: MessageName, version: number): CloudEvent {
  // TODO: apply UPCASTERS[name][from] for every version from `version` up to the latest, each to
  // the result of the one before, and return a new message with that data and the latest type and
  // dataschema (typeOf, dataschemaOf). Throw for a version newer than the latest or a missing step.
  // Do not change `message`.
  throw new Error('TODO: upcast');
}
