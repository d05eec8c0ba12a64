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
    // TODO: listen for the channel's 'return' event and remember the messageId of each returned
    // message (message.properties.messageId).
  }

  async publish(exchange: string, routingKey: string, event: OrderEvent, headers: Record<string, string> = {}): Promise<PublishOutcome> {
    // TODO: publish encodeOrderEvent(event) as a persistent JSON message with the given headers, a
    // fresh messageId (randomUUID()) and the flag that makes the broker return it when no queue
    // matches. Wait for the broker's confirm (the last argument of ConfirmChannel#publish is a
    // callback (error) => ...). Then: was this messageId returned? 'unroutable' : 'routed'.
    throw new Error('TODO: OrderEventPublisher.publish');
  }
}
