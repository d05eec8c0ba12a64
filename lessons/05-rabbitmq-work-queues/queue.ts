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
  // TODO:
  // 1. declare the dead-letter queue deadLetterQueueName(queue), durable and classic, first: the
  //    broker drops what is dead-lettered to a queue that does not exist;
  // 2. declare the job queue so that it survives a broker restart, with the arguments
  //    { 'x-queue-type': 'classic' } (so it behaves the same on every RabbitMQ version),
  //    'x-dead-letter-exchange': '' and 'x-dead-letter-routing-key' set to the dead-letter
  //    queue's name (a job a worker rejects for good goes there through the default exchange).
  throw new Error('TODO: assertJobQueue');
}
