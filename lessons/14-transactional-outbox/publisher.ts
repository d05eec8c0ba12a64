import type { ConfirmChannel } from 'amqplib';
import { messageFor, type OutboxEvent } from './events.ts';
import { withTimeout } from './timing.ts';

/** The broker answered basic.nack: it did not take the message (a full queue that rejects publishes, an internal error). */
export class PublishRefusedError extends Error {
  constructor(readonly eventId: string) {
    super(`the broker refused event ${eventId} (basic.nack)`);
    this.name = 'PublishRefusedError';
  }
}

/**
 * Publishes one event on a confirm channel and resolves once the broker has confirmed it
 * (basic.ack). Rejects with a PublishRefusedError when the broker refuses it (basic.nack), with
 * amqplib's error when the channel is or becomes closed, and with a TimeoutError when neither
 * happens within `timeoutMs`: over a connection that went silent, amqplib waits for an answer that
 * never comes.
 */
export function publishConfirmed(channel: ConfirmChannel, exchange: string, event: OutboxEvent, timeoutMs: number): Promise<void> {
  // TODO: publish the event with channel.publish(exchange, routingKey, content, options, callback),
  // using messageFor(event) for the routing key, body and properties, inside a Promise that
  // resolves when the callback is called without an error (basic.ack), and rejects with a
  // PublishRefusedError when it is called with Error('message nacked'), or with the error itself
  // otherwise (Error('channel closed')). publish() throws at once on a closed channel: inside the
  // Promise executor, that becomes a rejection.
  // Over a connection that went silent, the callback is never called at all: bound the promise
  // with withTimeout(..., timeoutMs, ...) from timing.ts.
  throw new Error('TODO: publishConfirmed');
}
