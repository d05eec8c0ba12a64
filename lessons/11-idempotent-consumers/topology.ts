import type { Channel } from 'amqplib';

/** Where the payment queue's rejected messages go: malformed ones, and those that failed twice. */
export function deadLetterQueueOf(queue: string): string {
  return `${queue}.dead`;
}

/**
 * Declares the payment queue and its dead-letter queue. Producer, consumers and checks all declare
 * them (declaring is idempotent), so none depends on another having run first.
 */
export async function assertPaymentQueue(channel: Channel, queue: string): Promise<void> {
  const deadLetters = deadLetterQueueOf(queue);
  // Stated, not left to the broker's default: RabbitMQ 4 lets a vhost default to quorum queues.
  await channel.assertQueue(deadLetters, { durable: true, arguments: { 'x-queue-type': 'classic' } });
  await channel.assertQueue(queue, {
    durable: true,
    arguments: {
      'x-queue-type': 'classic',
      // A rejected message is republished through the default exchange, straight to the dead-letter queue.
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': deadLetters,
    },
  });
}
