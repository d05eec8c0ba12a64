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
  const { routingKey, content, options } = messageFor(event);
  const confirmed = new Promise<void>((resolve, reject) => {
    // publish() throws at once on a channel that is already closed; inside the executor that
    // becomes a rejection. Its boolean result (false: the socket buffer is full) is not awaited
    // with 'drain': a relay round publishes a bounded wave, and the timeout covers a stuck socket.
    channel.publish(exchange, routingKey, content, options, (error) => {
      if (!error) resolve();
      // amqplib calls back with Error('message nacked') for a nack and Error('channel closed') when
      // the channel closed first; the message is the only way to tell them apart.
      else if (error.message === 'message nacked') reject(new PublishRefusedError(event.eventId));
      else reject(error);
    });
  });
  return withTimeout(confirmed, timeoutMs, `the broker's confirm of event ${event.eventId}`);
}
