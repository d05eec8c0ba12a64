import type { Channel } from 'amqplib';
import type { SagaEventType } from './events.ts';

/**
 * Declares the saga's topic exchange and one service's durable queue, bound to exactly the event
 * types the service reacts to. Every service declares all of it at start-up (declaring is
 * idempotent), so none depends on another having started first, and a service that is down still
 * has its queue collecting the events it will handle when it is back.
 */
export async function assertSagaTopology(channel: Channel, exchange: string, queue: string, reactsTo: readonly SagaEventType[]): Promise<void> {
  await channel.assertExchange(exchange, 'topic', { durable: true });
  // Classic, stated explicitly, so it behaves the same on RabbitMQ 3.x and 4.x.
  await channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'classic' } });
  for (const type of reactsTo) await channel.bindQueue(queue, exchange, type);
}
