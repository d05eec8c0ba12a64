import type { Channel } from 'amqplib';

/**
 * Each subscribing service owns one queue, named after the exchange it listens to and the service
 * itself: `signups.email`, `signups.audit`. Every instance of a service uses the same name.
 */
export function serviceQueueName(exchange: string, service: string): string {
  return `${exchange}.${service}`;
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
 * service's connection, so signups published while the service is down wait for it there.
 * Returns the queue's name.
 */
export async function assertServiceQueue(channel: Channel, exchange: string, service: string): Promise<string> {
  const queue = serviceQueueName(exchange, service);
  await channel.assertQueue(queue, {
    durable: true,
    exclusive: false,
    autoDelete: false,
    // Stated, not left to the broker's default: RabbitMQ 4 lets a vhost default to quorum queues.
    arguments: { 'x-queue-type': 'classic' },
  });
  // A fanout exchange ignores routing keys; '' says so.
  await channel.bindQueue(queue, exchange, '');
  return queue;
}
