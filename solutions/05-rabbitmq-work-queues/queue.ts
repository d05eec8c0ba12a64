import type { Channel } from 'amqplib';

/**
 * Declares the job queue. Producer and workers both declare it at start-up (declaring is
 * idempotent), so neither depends on the other having run first.
 */
export async function assertJobQueue(channel: Channel, queue: string): Promise<void> {
  await channel.assertQueue(queue, {
    // The queue definition survives a broker restart; persistent messages in it do too.
    durable: true,
    // Stated, not left to the broker's default: RabbitMQ 4 lets a vhost default to quorum queues,
    // which behave differently (delivery limits, no global prefetch).
    arguments: { 'x-queue-type': 'classic' },
  });
}
