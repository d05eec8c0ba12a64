import type { Channel } from 'amqplib';
import { HEADERS_BINDINGS, KIND_BINDINGS, TOPIC_BINDINGS, type Subscriber } from './subscribers.ts';

export interface RoutingNames {
  /** Routes by exact event type. */
  kindExchange: string;
  /** Routes by patterns over `order.<kind>.<region>[.express]`. */
  topicExchange: string;
  /** Routes by message headers. */
  headersExchange: string;
  /** Each subscriber's queue. */
  queues: Record<Subscriber, string>;
}

/**
 * Declares the three order exchanges, a queue per subscriber, and the bindings from
 * subscribers.ts. Idempotent: every service may run it at start-up.
 */
export async function declareOrderRouting(channel: Channel, names: RoutingNames): Promise<void> {
  // TODO:
  // 1. declare the three exchanges, durable, each with the type its routing needs;
  // 2. declare every subscriber's queue with assertSubscriberQueue;
  // 3. bind each subscriber's queue as subscribers.ts says: one binding per key in KIND_BINDINGS,
  //    the pattern in TOPIC_BINDINGS, and for HEADERS_BINDINGS a binding whose arguments (the 4th
  //    parameter of bindQueue) are the match rule. entries() below keeps the key types.
  throw new Error('TODO: declareOrderRouting');
}

/** A subscriber's durable queue, classic on every RabbitMQ version. */
async function assertSubscriberQueue(channel: Channel, queue: string): Promise<void> {
  await channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'classic' } });
}

/** Object.entries that keeps the key type. */
function entries<K extends string, V>(record: Record<K, V>): Array<[K, V]> {
  return Object.entries(record) as Array<[K, V]>;
}
