import type { IHeaders, KafkaMessage, Message } from 'kafkajs';
import { EVENT_HEADERS, isOrderEventType, ORDER_EVENT_BODIES, ORDER_EVENT_VERSION, type OrderEvent } from './events.ts';

/** A message that cannot be turned into an order event; `message` says why. */
export class MalformedEventError extends Error {
  override name = 'MalformedEventError';
}

export interface DecodedOrderEvent {
  event: OrderEvent;
  version: number;
  correlationId: string;
}

/**
 * One event as one Kafka message: the order id as key (all events of an order go to one partition,
 * so they stay in order), type, version and correlation id as headers, the body as JSON.
 */
export function encodeOrderEvent(event: OrderEvent, correlationId: string): Message {
  // TODO: return { key, value, headers }:
  //  - key: the order id;
  //  - value: the event without its `type`, as JSON (the type travels in a header);
  //  - headers: EVENT_HEADERS.type, EVENT_HEADERS.version (ORDER_EVENT_VERSION as text) and
  //    EVENT_HEADERS.correlationId.
  throw new Error('TODO: encodeOrderEvent');
}

/** The reverse of encodeOrderEvent; throws MalformedEventError with the reason for any bad input. */
export function decodeOrderEvent(message: Pick<KafkaMessage, 'key' | 'value' | 'headers'>): DecodedOrderEvent {
  // TODO: read the three headers (kafkajs gives you Buffers: see headerText below), check the type
  // with isOrderEventType and the version against ORDER_EVENT_VERSION, parse the JSON body and
  // validate it with ORDER_EVENT_BODIES[type].safeParse. Every problem becomes a
  // MalformedEventError whose message says what is wrong; a valid message becomes
  // { event: { type, ...body }, version, correlationId }.
  throw new Error('TODO: decodeOrderEvent');
}

/** A header's value as text, or undefined. kafkajs delivers header values as Buffers. */
function headerText(headers: IHeaders | undefined, name: string): string | undefined {
  const raw = headers?.[name];
  return (Array.isArray(raw) ? raw[0] : raw)?.toString();
}
