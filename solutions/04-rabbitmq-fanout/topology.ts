import type { Channel } from 'amqplib';

/**
 * Each subscribing service owns one queue, named after the exchange it listens to and the service
 * itself: `signups.email`, `signups.audit`. Every instance of a service uses the same name.
 */
export function serviceQueueName(exchange: string, service: string): string {
  return `${exchange}.${service}`;
}

/**
 * Where a service's queue puts the signups its service rejects (a malformed message, a handler that
 * failed): `signups.email.failed`. They wait there for a person to look at them, or for lesson 10's
 * retries, instead of being dropped.
 */
export function deadLetterQueueName(queue: string): string {
  return `${queue}.failed`;
}

/**
 * Declares the exchange signups are published to. Declaring is idempotent, so the publisher and
 * every subscriber declare it at start-up: whichever runs first creates it.
 */
export async function assertSignupExchange(channel: Channel, exchange: string): Promise<void> {
  // fanout: every queue bound to the exchange gets a copy of every message, whatever its key.
  // durable: the exchange (and its bindings to durable queues) survives a broker restart.
  await channel.assertExchange(exchange, 'fanout', { durable: true });
}

/**
 * Declares the service's own queue and binds it to the signup exchange. The queue outlives the
 * service's connection, so signups published while the service is down wait for it there; what
 * the service rejects goes to its dead-letter queue. Returns the queue's name.
 */
export async function assertServiceQueue(channel: Channel, exchange: string, service: string): Promise<string> {
  const queue = serviceQueueName(exchange, service);
  const deadLetters = deadLetterQueueName(queue);
  // Declared first: the broker drops what is dead-lettered to a queue that does not exist.
  await channel.assertQueue(deadLetters, { durable: true, arguments: { 'x-queue-type': 'classic' } });
  await channel.assertQueue(queue, {
    durable: true,
    exclusive: false,
    autoDelete: false,
    arguments: {
      // Stated, not left to the broker's default: RabbitMQ 4 lets a vhost default to quorum queues.
      'x-queue-type': 'classic',
      // A message the consumer rejects without requeue is republished through the default
      // exchange ('') with the dead-letter queue's name as its key: it lands in that queue.
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': deadLetters,
    },
  });
  // A fanout exchange ignores routing keys; '' says so.
  await channel.bindQueue(queue, exchange, '');
  return queue;
}
