import type { IHeaders, KafkaMessage, Message } from 'kafkajs';
import { EVENT_HEADERS, isMovementType, MOVEMENT_BODIES, MOVEMENT_VERSION, type StockMovement } from './events.ts';

export class MalformedEventError extends Error {
  override name = 'MalformedEventError';
}

/**
 * A movement as a message: keyed by SKU (one SKU's movements stay in order), with the movement's
 * own time as the message timestamp, so the log can be searched by time (seek to a timestamp).
 */
export function encodeMovement(movement: StockMovement): Message {
  const { type, ...body } = movement;
  return {
    key: movement.sku,
    value: JSON.stringify(body),
    timestamp: String(Date.parse(movement.at)),
    headers: { [EVENT_HEADERS.type]: type, [EVENT_HEADERS.version]: String(MOVEMENT_VERSION) },
  };
}

export function decodeMovement(message: Pick<KafkaMessage, 'value' | 'headers'>): StockMovement {
  const type = headerText(message.headers, EVENT_HEADERS.type);
  if (!type) throw new MalformedEventError(`the "${EVENT_HEADERS.type}" header is missing`);
  if (!isMovementType(type)) throw new MalformedEventError(`unknown movement type "${type}"`);
  const version = headerText(message.headers, EVENT_HEADERS.version);
  if (version !== String(MOVEMENT_VERSION)) throw new MalformedEventError(`${type} version "${version ?? ''}" is not supported`);

  let json: unknown;
  try {
    json = JSON.parse(message.value?.toString() ?? '');
  } catch {
    throw new MalformedEventError(`${type} body is not valid JSON`);
  }
  const body = MOVEMENT_BODIES[type].safeParse(json);
  if (!body.success) {
    throw new MalformedEventError(`${type} body is invalid: ${body.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return { type, ...body.data } as StockMovement;
}

function headerText(headers: IHeaders | undefined, name: string): string | undefined {
  const raw = headers?.[name];
  return (Array.isArray(raw) ? raw[0] : raw)?.toString();
}
