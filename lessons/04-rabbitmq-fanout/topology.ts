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
  // TODO: declare `exchange` as a durable exchange that copies every message to every bound queue.
  throw new Error('TODO: assertSignupExchange');
}

/**
 * Declares the service's own queue and binds it to the signup exchange. The queue outlives the
 * service's connection, so signups published while the service is down wait for it there; what
 * the service rejects goes to its dead-letter queue. Returns the queue's name.
 */
export async function assertServiceQueue(channel: Channel, exchange: string, service: string): Promise<string> {
  // TODO:
  // 1. declare the dead-letter queue deadLetterQueueName(queue), durable and classic, first: the
  //    broker drops what is dead-lettered to a queue that does not exist;
  // 2. declare the queue named serviceQueueName(exchange, service): durable, not exclusive, not
  //    auto-delete, with the arguments { 'x-queue-type': 'classic' } (so it behaves alike on every
  //    RabbitMQ version), 'x-dead-letter-exchange': '' and 'x-dead-letter-routing-key' set to the
  //    dead-letter queue's name (what the service rejects goes there through the default exchange);
  // 3. bind it to the exchange and return its name.
  throw new Error('TODO: assertServiceQueue');
}
