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
  await channel.assertExchange(names.kindExchange, 'direct', { durable: true });
  await channel.assertExchange(names.topicExchange, 'topic', { durable: true });
  await channel.assertExchange(names.headersExchange, 'headers', { durable: true });

  for (const queue of Object.values(names.queues)) await assertSubscriberQueue(channel, queue);

  for (const [subscriber, keys] of entries(KIND_BINDINGS)) {
    // One binding per key: a queue may be bound to one exchange many times.
    for (const key of keys) await channel.bindQueue(names.queues[subscriber], names.kindExchange, key);
  }
  for (const [subscriber, pattern] of entries(TOPIC_BINDINGS)) {
    await channel.bindQueue(names.queues[subscriber], names.topicExchange, pattern);
  }
  for (const [subscriber, match] of entries(HEADERS_BINDINGS)) {
    // The headers exchange ignores the routing key; the binding's arguments are the match rule.
    await channel.bindQueue(names.queues[subscriber], names.headersExchange, '', match);
  }
}

/** A subscriber's durable queue, classic on every RabbitMQ version. */
async function assertSubscriberQueue(channel: Channel, queue: string): Promise<void> {
  await channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'classic' } });
}

/** Object.entries that keeps the key type. */
function entries<K extends string, V>(record: Record<K, V>): Array<[K, V]> {
  return Object.entries(record) as Array<[K, V]>;
}
