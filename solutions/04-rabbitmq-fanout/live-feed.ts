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
  await assertSignupExchange(channel, exchange);
  const { queue } = await channel.assertQueue('', {
    // '' lets the broker pick a unique name (amq.gen-…), one queue per open feed.
    exclusive: true, // only this connection may use it, and it is deleted when the connection closes
    autoDelete: true, // deleted as soon as its last consumer goes away, even on a connection that stays open
    durable: false,
    arguments: { 'x-queue-type': 'classic' },
  });
  await channel.bindQueue(queue, exchange, '');

  const { consumerTag } = await channel.consume(
    queue,
    (message) => {
      if (message === null) return;
      const parsed = parseSignup(message.content);
      if (parsed.ok) onSignup(parsed.event);
      else console.error(`[live-feed] skipped a malformed signup message: ${parsed.reason}`);
    },
    // A live view may miss an event if it crashes: there is nothing to redeliver, so no acks.
    { noAck: true },
  );
  return { queue, consumerTag };
}
