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
  const { amount, ...rest } = data;
  return { ...rest, total: { amountMinor: amount, currency: 'EUR' } };
}

/** v2 → v3: the customer becomes an object. Orders placed before v3 have no email, and none is made up. */
export function orderPlacedV2ToV3(data: OrderPlacedV2): OrderPlacedV3 {
  const { customerId, ...rest } = data;
  return { ...rest, customer: { id: customerId } };
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
  const latest = latestVersion(name);
  if (version > latest) throw new Error(`cannot upcast ${message.type}: v${latest} is the latest version this code knows`);
  let data: unknown = message.data;
  for (let from = version; from < latest; from++) {
    const step = UPCASTERS[name]?.[from];
    if (!step) throw new Error(`no upcaster from v${from} to v${from + 1} of ${name}`);
    data = step(data as never);
  }
  if (version === latest) return message;
  return { ...message, type: typeOf(name, latest), dataschema: dataschemaOf(name, latest), data };
}
