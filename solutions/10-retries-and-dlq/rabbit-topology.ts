import type { Channel } from 'amqplib';
import type { RetryPolicy } from './retry-policy.ts';

export interface RetryQueue {
  name: string;
  /** The queue's x-message-ttl: how long every message waits in it before it goes back to work. */
  delayMs: number;
}

/** The names of everything one work queue with retries needs, and the policy they were made for. */
export interface RetryTopology {
  /** Direct exchange that producers publish to, and the dead-letter exchange of every retry queue. */
  exchange: string;
  /** The work queue the workers consume. */
  queue: string;
  /** The key that binds the work queue to the exchange. */
  routingKey: string;
  /** One queue per distinct delay of the policy. */
  retryQueues: readonly RetryQueue[];
  /** Where a message goes when its last attempt failed; people (or a tool) read it. */
  deadLetterQueue: string;
  policy: RetryPolicy;
}

/** labels → exchange and queue "labels", retry queues "labels.retry.100ms", …, and "labels.dlq". */
export function retryTopology(name: string, policy: RetryPolicy): RetryTopology {
  const delays = [...new Set(policy.delaysMs)];
  return {
    exchange: name,
    queue: name,
    routingKey: name,
    retryQueues: delays.map((delayMs) => ({ name: `${name}.retry.${delayMs}ms`, delayMs })),
    deadLetterQueue: `${name}.dlq`,
    policy,
  };
}

/** The retry queue whose TTL is `delayMs`. */
export function retryQueueFor(topology: RetryTopology, delayMs: number): string {
  const queue = topology.retryQueues.find((retry) => retry.delayMs === delayMs);
  if (!queue) throw new Error(`the topology of ${topology.queue} has no retry queue for ${delayMs} ms`);
  return queue.name;
}

/** Every queue here is a classic queue, stated: RabbitMQ 4 can make quorum queues the default. */
const CLASSIC = { 'x-queue-type': 'classic' } as const;

/**
 * Declares the exchange, the work queue, one retry queue per delay and the dead-letter queue, all
 * durable. Declaring is idempotent: every worker does it at start-up.
 *
 * A retry queue has no consumer. Each message in it waits for the queue's x-message-ttl, expires,
 * and the broker dead-letters it to the queue's dead-letter exchange (the work exchange) with the
 * work queue's routing key: it is back in the work queue, at the tail. Because the TTL belongs to
 * the queue, every message in it waits the same time, so the one at the head always expires first.
 */
export async function assertRetryTopology(channel: Channel, topology: RetryTopology): Promise<void> {
  // The retry queues name this exchange as their dead-letter exchange. RabbitMQ does not check
  // that it exists: if it does not, every expired retry is dropped without a trace.
  await channel.assertExchange(topology.exchange, 'direct', { durable: true });
  await channel.assertQueue(topology.queue, { durable: true, arguments: CLASSIC });
  await channel.bindQueue(topology.queue, topology.exchange, topology.routingKey);

  for (const { name, delayMs } of topology.retryQueues) {
    await channel.assertQueue(name, {
      durable: true,
      arguments: {
        ...CLASSIC,
        'x-message-ttl': delayMs,
        'x-dead-letter-exchange': topology.exchange,
        // Without it an expired message keeps the routing key it was published with (the retry
        // queue's name), which the work exchange does not route anywhere.
        'x-dead-letter-routing-key': topology.routingKey,
      },
    });
  }

  await channel.assertQueue(topology.deadLetterQueue, { durable: true, arguments: CLASSIC });
}
