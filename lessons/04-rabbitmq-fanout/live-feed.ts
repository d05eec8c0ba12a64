import type { Channel } from 'amqplib';
import { parseSignup, type UserSignedUp } from './events.ts';
import type { Subscription } from './subscriber.ts';
import { assertSignupExchange } from './topology.ts';

/**
 * A live view of signups, e.g. for an admin dashboard: it wants what happens while it is open
 * and nothing from before. Its queue is private to its connection and disappears with it, so a
 * closed dashboard leaves nothing behind to pile up.
 */
export async function startLiveFeed(channel: Channel, exchange: string, onSignup: (event: UserSignedUp) => void): Promise<Subscription> {
  // TODO:
  // 1. declare the exchange;
  // 2. declare a queue with an empty name (the broker picks a unique one), exclusive and
  //    auto-delete, with arguments { 'x-queue-type': 'classic' }, and bind it to the exchange;
  // 3. consume it and call onSignup for every message parseSignup accepts (log the others).
  //    A live view has nothing to redeliver, so it can consume with { noAck: true };
  // 4. return { queue, consumerTag }.
  throw new Error('TODO: startLiveFeed');
}
