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
  const { type, ...body } = event;
  return {
    key: event.orderId,
    value: JSON.stringify(body),
    headers: {
      [EVENT_HEADERS.type]: type,
      [EVENT_HEADERS.version]: String(ORDER_EVENT_VERSION),
      [EVENT_HEADERS.correlationId]: correlationId,
    },
  };
}

/** The reverse of encodeOrderEvent; throws MalformedEventError with the reason for any bad input. */
export function decodeOrderEvent(message: Pick<KafkaMessage, 'key' | 'value' | 'headers'>): DecodedOrderEvent {
  const type = requiredHeader(message.headers, EVENT_HEADERS.type);
  const versionText = requiredHeader(message.headers, EVENT_HEADERS.version);
  const correlationId = requiredHeader(message.headers, EVENT_HEADERS.correlationId);

  if (!isOrderEventType(type)) throw new MalformedEventError(`unknown event type "${type}"`);
  const version = Number(versionText);
  if (version !== ORDER_EVENT_VERSION) {
    throw new MalformedEventError(`${type} version "${versionText}" is not supported (this consumer reads version ${ORDER_EVENT_VERSION})`);
  }
  if (!message.value) throw new MalformedEventError(`${type} message has no body`);

  let json: unknown;
  try {
    json = JSON.parse(message.value.toString());
  } catch {
    throw new MalformedEventError(`${type} body is not valid JSON`);
  }
  const body = ORDER_EVENT_BODIES[type].safeParse(json);
  if (!body.success) {
    const problems = body.error.issues.map((issue) => `${issue.path.join('.') || '(body)'}: ${issue.message}`);
    throw new MalformedEventError(`${type} body is invalid: ${problems.join('; ')}`);
  }

  const key = message.key?.toString();
  if (key !== body.data.orderId) {
    throw new MalformedEventError(`${type} key "${key ?? ''}" does not match its order id "${body.data.orderId}"`);
  }
  return { event: { type, ...body.data } as OrderEvent, version, correlationId };
}

function requiredHeader(headers: IHeaders | undefined, name: string): string {
  const value = headerText(headers, name);
  if (!value) throw new MalformedEventError(`the "${name}" header is missing`);
  return value;
}

/** A header's value as text, or undefined. kafkajs delivers header values as Buffers. */
function headerText(headers: IHeaders | undefined, name: string): string | undefined {
  const raw = headers?.[name];
  return (Array.isArray(raw) ? raw[0] : raw)?.toString();
}
