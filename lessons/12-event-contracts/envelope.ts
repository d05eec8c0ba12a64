import { randomUUID } from 'node:crypto';
import { dataschemaOf, latestVersion, typeOf, type MessageName } from './catalog.ts';
import type { CloudEvent, LatestData } from './events.ts';

export interface MessageOptions {
  /** URI-reference of the producing service, e.g. `/checkout`. */
  source: string;
  /** The flow this message belongs to. Omitted: this message starts a flow, and its own id is the correlation id. */
  correlationId?: string;
  /** The id of the message that caused this one. Omitted on the first message of a flow. */
  causationId?: string;
}

/**
 * A new message (event or command) in the latest version of its contract, as a CloudEvent:
 * a fresh id, the current time, the versioned type and the contract's URI as `dataschema`.
 */
export function createMessage<N extends MessageName>(name: N, data: LatestData[N], options: MessageOptions): CloudEvent<LatestData[N]> {
  // TODO: build the CloudEvent for the latest version of the message's contract:
  // - specversion '1.0', a new id (randomUUID()), source from the options;
  // - type: the name plus the latest version (typeOf, latestVersion), e.g. com.example.orders.order-placed.v3;
  // - time: now, as RFC 3339 (new Date().toISOString()); datacontenttype 'application/json';
  // - dataschema: the URI of that version's contract (dataschemaOf);
  // - the extensions correlationid (the given one, or else this message's own id: it starts a flow)
  //   and causationid (only when one is given). CloudEvents attribute names are lowercase letters
  //   and digits: correlationid, never correlationId or correlation_id.
  throw new Error('TODO: createMessage');
}

/**
 * A message caused by another one (an event a handler reacts to, a command it runs): it belongs to
 * the same flow, so it keeps the parent's correlation id, and it names the parent as its cause.
 */
export function followUp<N extends MessageName>(parent: CloudEvent, name: N, data: LatestData[N], source: string): CloudEvent<LatestData[N]> {
  // TODO: a new message (createMessage) in the same flow as its parent: which of the parent's
  // attributes is the flow, and which names the parent itself?
  throw new Error('TODO: followUp');
}

/** The body of an AMQP message in structured content mode: the whole CloudEvent as JSON. */
export function encodeMessage(message: CloudEvent): Buffer {
  return Buffer.from(JSON.stringify(message));
}
