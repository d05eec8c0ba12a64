import type { IHeaders, KafkaMessage, Message } from 'kafkajs';
import { z } from 'zod';
import { EVENT_DATA, isAccountEventType, type RecordedEvent } from './events.ts';

export const EVENT_TYPE_HEADER = 'event-type';

/** A record on the topic that is not an account event this code understands. */
export class MalformedEventError extends Error {
  override name = 'MalformedEventError';
}

/**
 * A recorded event as a Kafka message, keyed by stream id: all events of one account land in one
 * partition, in order. The body carries the event's store coordinates (position, version), which
 * the projection records and the query side reports.
 */
export function encodeEvent(event: RecordedEvent): Message {
  const { type, data, streamId, version, position, recordedAt } = event;
  return {
    key: streamId,
    value: JSON.stringify({ type, data, streamId, version, position, recordedAt }),
    headers: { [EVENT_TYPE_HEADER]: type },
  };
}

const ENVELOPE = z.strictObject({
  type: z.string(),
  data: z.unknown(),
  streamId: z.string().min(1),
  version: z.number().int().positive(),
  position: z.number().int().positive(),
  recordedAt: z.iso.datetime({ offset: true }),
});

export function decodeEvent(message: Pick<KafkaMessage, 'value' | 'headers'>): RecordedEvent {
  let json: unknown;
  try {
    json = JSON.parse(message.value?.toString() ?? '');
  } catch {
    throw new MalformedEventError(`the body is not JSON (${headerText(message.headers, EVENT_TYPE_HEADER) ?? 'no type header'})`);
  }
  const envelope = ENVELOPE.safeParse(json);
  if (!envelope.success) throw new MalformedEventError(`not an event envelope: ${issues(envelope.error)}`);
  const { type, data, ...where } = envelope.data;
  if (!isAccountEventType(type)) throw new MalformedEventError(`unknown event type "${type}"`);
  const parsed = EVENT_DATA[type].safeParse(data);
  if (!parsed.success) throw new MalformedEventError(`${type} data is invalid: ${issues(parsed.error)}`);
  return { type, data: parsed.data, ...where } as RecordedEvent;
}

function issues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
}

function headerText(headers: IHeaders | undefined, name: string): string | undefined {
  const raw = headers?.[name];
  return (Array.isArray(raw) ? raw[0] : raw)?.toString();
}
