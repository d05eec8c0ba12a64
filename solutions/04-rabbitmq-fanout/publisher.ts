import { once } from 'node:events';
import type { Channel } from 'amqplib';
import { encodeSignup, USER_SIGNED_UP, type UserSignedUp } from './events.ts';

/**
 * Announces a signup on the fanout exchange. The publisher names the exchange only: which
 * services receive the event is decided by the queues bound to it, not by the publisher.
 */
export async function publishSignup(channel: Channel, exchange: string, event: UserSignedUp): Promise<void> {
  const written = channel.publish(exchange, '', encodeSignup(event), {
    persistent: true,
    contentType: 'application/json',
    type: USER_SIGNED_UP,
    messageId: event.userId,
    timestamp: Math.floor(Date.parse(event.signedUpAt) / 1000),
  });
  // false means the client's write buffer is full: wait until it drains before publishing more.
  if (!written) await once(channel, 'drain');
}
