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
  const id = randomUUID();
  const version = latestVersion(name);
  const message: CloudEvent<LatestData[N]> = {
    specversion: '1.0',
    id,
    source: options.source,
    type: typeOf(name, version),
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    dataschema: dataschemaOf(name, version),
    // The first message of a flow starts it: everything it causes carries its id from here on.
    correlationid: options.correlationId ?? id,
    data,
  };
  if (options.causationId !== undefined) message.causationid = options.causationId;
  return message;
}

/**
 * A message caused by another one (an event a handler reacts to, a command it runs): it belongs to
 * the same flow, so it keeps the parent's correlation id, and it names the parent as its cause.
 */
export function followUp<N extends MessageName>(parent: CloudEvent, name: N, data: LatestData[N], source: string): CloudEvent<LatestData[N]> {
  return createMessage(name, data, { source, correlationId: parent.correlationid, causationId: parent.id });
}

/** The body of an AMQP message in structured content mode: the whole CloudEvent as JSON. */
export function encodeMessage(message: CloudEvent): Buffer {
  return Buffer.from(JSON.stringify(message));
}
