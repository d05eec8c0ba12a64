import type { Channel } from 'amqplib';

/**
 * Declares the job queue. Producer and workers both declare it at start-up (declaring is
 * idempotent), so neither depends on the other having run first.
 */
export async function assertJobQueue(channel: Channel, queue: string): Promise<void> {
  // TODO: declare the queue so that it survives a broker restart, with the arguments
  // { 'x-queue-type': 'classic' } so it behaves the same on every RabbitMQ version.
  throw new Error('TODO: assertJobQueue');
}
