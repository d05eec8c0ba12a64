import { randomUUID } from 'node:crypto';
import type { ConfirmChannel, Message } from 'amqplib';
import { encodeOrderEvent, type OrderEvent } from './orders.ts';

/** What became of a published message: queued somewhere, or matched no binding at all. */
export type PublishOutcome = 'routed' | 'unroutable';

/**
 * Publishes order events and tells the caller whether any queue received each one. By default
 * RabbitMQ drops a message that matches no binding without a word; with the mandatory flag it
 * returns the message to the publisher instead, and it does so before it confirms the message.
 */
export class OrderEventPublisher {
  /** Message ids the broker returned as unroutable, until their confirm arrives. */
  private readonly returned = new Set<string>();

  constructor(private readonly channel: ConfirmChannel) {
    channel.on('return', (message: Message) => {
      const id: unknown = message.properties.messageId;
      if (typeof id === 'string') this.returned.add(id);
    });
  }

  async publish(exchange: string, routingKey: string, event: OrderEvent, headers: Record<string, string> = {}): Promise<PublishOutcome> {
    // A fresh id per publish, to pair a returned message with this call.
    const messageId = randomUUID();
    await new Promise<void>((resolve, reject) => {
      this.channel.publish(
        exchange,
        routingKey,
        encodeOrderEvent(event),
        { mandatory: true, persistent: true, contentType: 'application/json', type: `order.${event.kind}`, messageId, headers },
        (error: unknown) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve()),
      );
    });
    // The confirm has arrived, so any return for this message has arrived before it.
    return this.returned.delete(messageId) ? 'unroutable' : 'routed';
  }
}
