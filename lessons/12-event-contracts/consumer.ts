import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { CommandName, EventName, MessageName } from './catalog.ts';
import { checkMessage, readMessage } from './contracts.ts';
import type { CloudEvent, LatestData } from './events.ts';
import { assertCommandQueue, assertServiceQueue, park, type Topology } from './messaging.ts';
import { upcast } from './upcasters.ts';

export interface DeliveryContext {
  /** True when the broker delivered this message before, to a consumer that did not acknowledge it. */
  redelivered: boolean;
  /** The type the message arrived with, before upcasting: `com.example.orders.order-placed.v1`. */
  receivedAs: string;
}

/** Handles the latest version of a message. Throwing (or rejecting) means "not handled". */
export type Handler<N extends MessageName> = (message: CloudEvent<LatestData[N]>, context: DeliveryContext) => Promise<void>;

/** A subscribing service's handlers, one per event it handles. */
export type EventHandlers = { [N in EventName]?: Handler<N> };

type Handlers = { [N in MessageName]?: Handler<N> };

export interface ConsumerOptions {
  /** Messages held unacknowledged at a time (default 10). */
  prefetch?: number;
  /** Where problems are reported (default console.error). */
  log?: (line: string) => void;
}

export interface Consumer {
  queue: string;
  consumerTag: string;
}

/** What receive needs to know about the queue a message came from. */
interface Route {
  queue: string;
  /** Names the consumer in log lines, e.g. `billing`. */
  consumer: string;
  handlers: Handlers;
  log: (line: string) => void;
}

/**
 * Subscribes a service to events: its own queue, bound to every version of each event it has a
 * handler for. Handlers receive the latest version of each event, whatever version was published.
 */
export async function startSubscriber(channel: ConfirmChannel, topology: Topology, service: string, handlers: EventHandlers, options: ConsumerOptions = {}): Promise<Consumer> {
  const events = Object.keys(handlers) as EventName[];
  const queue = await assertServiceQueue(channel, topology, service, events);
  return consume(channel, { queue, consumer: service, handlers, log: options.log ?? console.error }, options);
}

/**
 * Runs a command for a service: consumes the command's queue, which every instance of the service
 * shares, so each command is run by exactly one of them.
 */
export async function startCommandHandler<N extends CommandName>(channel: ConfirmChannel, topology: Topology, name: N, handler: Handler<N>, options: ConsumerOptions = {}): Promise<Consumer> {
  const queue = await assertCommandQueue(channel, topology, name);
  const handlers: Handlers = { [name]: handler };
  return consume(channel, { queue, consumer: `${name} handler`, handlers, log: options.log ?? console.error }, options);
}

async function consume(channel: ConfirmChannel, route: Route, options: ConsumerOptions): Promise<Consumer> {
  await channel.prefetch(options.prefetch ?? 10);
  const { consumerTag } = await channel.consume(
    route.queue,
    (message) => {
      // null: the broker cancelled this consumer (its queue was deleted).
      if (message === null) return;
      receive(channel, message, route).catch((error: unknown) =>
        // The message stays unacknowledged and comes back when this channel closes.
        route.log(`[${route.consumer}] could not settle a message: ${errorDetail(error)}`),
      );
    },
    { noAck: false },
  );
  return { queue: route.queue, consumerTag };
}

/**
 * One message, from the wire to its handler. Every message ends acknowledged, requeued once, or
 * parked with a reason: none is lost, none loops, and one that cannot be handled does not stop the
 * messages behind it.
 */
async function receive(channel: ConfirmChannel, message: ConsumeMessage, route: Route): Promise<void> {
  // TODO: take the message from the wire to its handler, and settle it exactly once:
  // 1. readMessage(message.content). Not ok (not JSON, not a CloudEvent, unknown type or version,
  //    invalid payload): park it with checked.reason (park, in messaging.ts), then ack it.
  // 2. The handler for checked.name in route.handlers; none: park it.
  // 3. Upcast it to the latest version (upcast); if that throws, or the result fails checkMessage,
  //    park it.
  // 4. await the handler with the latest message and { redelivered, receivedAs: the type it arrived
  //    with }, then ack. If the handler throws or rejects: the first time (not redelivered), nack
  //    with requeue so it is tried once more; when it was already redelivered, park it with the error.
  // Log what you park with route.log(...), with the error's stack (errorDetail) when an error caused it.
  throw new Error('TODO: receive');
}

/** An error's message: short enough for a parked message's reason header. */
function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** An error with its stack, for the log: where it was thrown matters more than what it says. */
function errorDetail(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}
