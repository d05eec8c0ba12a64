import type { Channel } from 'amqplib';

/**
 * Where the job queue puts the jobs its workers reject for good (malformed, or failed twice):
 * `uploads.thumbnails.failed`. They wait there for a person, or for lesson 10's retries.
 */
export function deadLetterQueueName(queue: string): string {
  return `${queue}.failed`;
}

/**
 * Declares the job queue and its dead-letter queue. Producer and workers both declare them at
 * start-up (declaring is idempotent), so neither depends on the other having run first.
 */
export async function assertJobQueue(channel: Channel, queue: string): Promise<void> {
  const deadLetters = deadLetterQueueName(queue);
  // Declared first: the broker drops what is dead-lettered to a queue that does not exist.
  await channel.assertQueue(deadLetters, { durable: true, arguments: { 'x-queue-type': 'classic' } });
  await channel.assertQueue(queue, {
    // The queue definition survives a broker restart; persistent messages in it do too.
    durable: true,
    arguments: {
      // Stated, not left to the broker's default: RabbitMQ 4 lets a vhost default to quorum queues,
      // which behave differently (delivery limits, no global prefetch).
      'x-queue-type': 'classic',
      // A job a worker rejects without requeue goes through the default exchange ('') to the
      // queue named by this key: the dead-letter queue.
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': deadLetters,
    },
  });
}
