import { once } from 'node:events';
import type { Channel } from 'amqplib';
import { encodeSignup, USER_SIGNED_UP, type UserSignedUp } from './events.ts';

/**
 * Announces a signup on the fanout exchange. The publisher names the exchange only: which
 * services receive the event is decided by the queues bound to it, not by the publisher.
 */
export async function publishSignup(channel: Channel, exchange: string, event: UserSignedUp): Promise<void> {
  // TODO: publish encodeSignup(event) to the exchange (not to a queue) as a persistent JSON message
  // of type USER_SIGNED_UP. channel.publish returns false when the client's write buffer is full:
  // then wait for the channel's 'drain' event (`await once(channel, 'drain')`).
  throw new Error('TODO: publishSignup');
}
