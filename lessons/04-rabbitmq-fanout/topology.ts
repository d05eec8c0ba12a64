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
  // TODO: declare `exchange` as a durable exchange that copies every message to every bound queue.
  throw new Error('TODO: assertSignupExchange');
}

/**
 * Declares the service's own queue and binds it to the signup exchange. The queue outlives the
 * service's connection, so signups published while the service is down wait for it there.
 * Returns the queue's name.
 */
export async function assertServiceQueue(channel: Channel, exchange: string, service: string): Promise<string> {
  // TODO: declare the queue named serviceQueueName(exchange, service): durable, not exclusive, not
  // auto-delete, with arguments { 'x-queue-type': 'classic' } so it behaves alike on every RabbitMQ
  // version. Bind it to the exchange and return its name.
  throw new Error('TODO: assertServiceQueue');
}
