import { once } from 'node:events';
import type { Channel, ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import { checkMessage } from './contracts.ts';
import { encodeMessage } from './envelope.ts';
import { isCommand, type CommandName, type EventName } from './catalog.ts';
import type { CloudEvent } from './events.ts';

/**
 * Where messages go. Events are published to one topic exchange, with the event's type as the
 * routing key; every subscribing service has its own queue bound to the event names it handles, so
 * an event reaches every subscriber. A command goes to the one queue of the service that runs it,
 * shared by that service's instances, so exactly one of them runs it.
 */
export interface Topology {
  /** Prefixes every exchange and queue name, e.g. `shop`. */
  namespace: string;
}

/** The media type of a CloudEvent in the JSON event format (structured content mode). */
export const CLOUDEVENTS_JSON = 'application/cloudevents+json';

/** Messages a consumer cannot handle wait here, with the reason in this header, for a person to look at. */
export const PARKED_REASON_HEADER = 'x-parked-reason';

const CLASSIC = { 'x-queue-type': 'classic' } as const;

export function eventsExchange(topology: Topology): string {
  return `${topology.namespace}.events`;
}

/** `shop.billing`: one queue per subscribing service, shared by its instances. */
export function serviceQueue(topology: Topology, service: string): string {
  return `${topology.namespace}.${service}`;
}

/** `shop.commands.payments.capture-payment`: the queue of the service that runs the command. */
export function commandQueue(topology: Topology, name: CommandName): string {
  return `${topology.namespace}.commands.${name.split('.').slice(-2).join('.')}`;
}

/** Where a consumer of `queue` parks what it cannot handle. */
export function parkedQueue(queue: string): string {
  return `${queue}.parked`;
}

/** The binding key for every version of an event: `com.example.orders.order-placed.*`. */
export function everyVersionOf(name: EventName): string {
  return `${name}.*`;
}

export async function assertEventsExchange(channel: Channel, topology: Topology): Promise<string> {
  const exchange = eventsExchange(topology);
  await channel.assertExchange(exchange, 'topic', { durable: true });
  return exchange;
}

async function assertQueueWithParking(channel: Channel, queue: string): Promise<void> {
  await channel.assertQueue(queue, { durable: true, arguments: CLASSIC });
  await channel.assertQueue(parkedQueue(queue), { durable: true, arguments: CLASSIC });
}

/**
 * Declares a subscribing service's queue (and its parked queue) and binds it to every version of
 * each event it handles: a version it does not know still reaches it, to be parked rather than lost.
 */
export async function assertServiceQueue(channel: Channel, topology: Topology, service: string, events: readonly EventName[]): Promise<string> {
  const exchange = await assertEventsExchange(channel, topology);
  const queue = serviceQueue(topology, service);
  await assertQueueWithParking(channel, queue);
  for (const name of events) await channel.bindQueue(queue, exchange, everyVersionOf(name));
  return queue;
}

/** Declares the queue (and parked queue) of the service that runs a command. Sender and handler both declare it. */
export async function assertCommandQueue(channel: Channel, topology: Topology, name: CommandName): Promise<string> {
  const queue = commandQueue(topology, name);
  await assertQueueWithParking(channel, queue);
  return queue;
}

/**
 * Publishes on a confirm channel and resolves once the broker has confirmed the message (rejects
 * if it refused it). Waits for the channel's write buffer to drain when it is full.
 */
export async function publishConfirmed(channel: ConfirmChannel, exchange: string, routingKey: string, body: Buffer, options: Options.Publish): Promise<void> {
  let written = false;
  const confirmed = new Promise<void>((resolve, reject) => {
    written = channel.publish(exchange, routingKey, body, options, (error: unknown) => (error ? reject(asError(error)) : resolve()));
  });
  if (!written) await once(channel, 'drain');
  await confirmed;
}

/** AMQP properties of a CloudEvent in structured content mode. */
export function messageProperties(message: CloudEvent): Options.Publish {
  return {
    persistent: true,
    contentType: CLOUDEVENTS_JSON,
    messageId: message.id,
    type: message.type,
    timestamp: Math.floor(Date.parse(message.time) / 1000),
  };
}

/**
 * Publishes an event so that every subscriber receives it: to the events exchange, with its type as
 * the routing key. Refuses (rejects, publishing nothing) a message that breaks its own contract,
 * and a command: those are sent with sendCommand.
 */
export async function publishEvent(channel: ConfirmChannel, topology: Topology, event: CloudEvent): Promise<void> {
  const checked = checkMessage(event);
  if (!checked.ok) throw new Error(`refusing to publish ${event.type}: ${checked.reason}`);
  if (isCommand(checked.name)) throw new Error(`${event.type} is a command: send it with sendCommand, to the one service that runs it`);
  await publishConfirmed(channel, eventsExchange(topology), event.type, encodeMessage(event), messageProperties(event));
}

/**
 * Sends a command to the one service that runs it: straight to that service's queue, through the
 * default exchange, never to the events exchange. Refuses a message that breaks its contract.
 */
export async function sendCommand(channel: ConfirmChannel, topology: Topology, command: CloudEvent): Promise<void> {
  const checked = checkMessage(command);
  if (!checked.ok) throw new Error(`refusing to send ${command.type}: ${checked.reason}`);
  if (!isCommand(checked.name)) throw new Error(`${command.type} is an event: publish it with publishEvent, to every subscriber`);
  const queue = commandQueue(topology, checked.name);
  await publishConfirmed(channel, '', queue, encodeMessage(command), messageProperties(command));
}

/**
 * Parks a message the consumer of `queue` cannot handle: a copy of the message as it arrived (body
 * and properties unchanged) goes to the parked queue with the reason in a header. Resolves once the
 * broker has confirmed the copy: only then may the caller acknowledge the original.
 */
export async function park(channel: ConfirmChannel, message: ConsumeMessage, queue: string, reason: string): Promise<void> {
  const { properties } = message;
  await publishConfirmed(channel, '', parkedQueue(queue), message.content, {
    persistent: true,
    contentType: properties.contentType as string | undefined,
    messageId: properties.messageId as string | undefined,
    type: properties.type as string | undefined,
    timestamp: properties.timestamp as number | undefined,
    headers: {
      ...(properties.headers ?? {}),
      [PARKED_REASON_HEADER]: reason,
      'x-parked-from': queue,
      'x-parked-at': new Date().toISOString(),
      'x-original-routing-key': message.fields.routingKey,
    },
  });
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
