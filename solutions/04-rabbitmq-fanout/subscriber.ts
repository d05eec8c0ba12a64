import type { Channel, ConsumeMessage } from 'amqplib';
import { parseSignup, type UserSignedUp } from './events.ts';
import { assertServiceQueue, assertSignupExchange } from './topology.ts';

export type SignupHandler = (event: UserSignedUp) => Promise<void>;

export interface Subscription {
  queue: string;
  consumerTag: string;
}

export interface SubscriberConfig {
  exchange: string;
  /** The service's name, e.g. "email": it names the service's queue. */
  service: string;
}

/**
 * Subscribes a service to signups: declares the exchange and the service's own queue, then
 * consumes from that queue. A signup is acknowledged only after the handler has finished, so one
 * that arrives while the service crashes is delivered again rather than lost; one the handler
 * fails on is rejected into the service's dead-letter queue.
 */
export async function startSignupSubscriber(channel: Channel, config: SubscriberConfig, handle: SignupHandler): Promise<Subscription> {
  await assertSignupExchange(channel, config.exchange);
  const queue = await assertServiceQueue(channel, config.exchange, config.service);

  const { consumerTag } = await channel.consume(
    queue,
    (message) => {
      // null: the broker cancelled this consumer (its queue was deleted).
      if (message === null) return;
      deliver(channel, message, handle, config.service).catch((error: unknown) =>
        console.error(`[${config.service}] could not settle a signup message:`, error),
      );
    },
    { noAck: false },
  );
  return { queue, consumerTag };
}

async function deliver(channel: Channel, message: ConsumeMessage, handle: SignupHandler, service: string): Promise<void> {
  const parsed = parseSignup(message.content);
  if (!parsed.ok) {
    // Requeueing a message that can never be read would loop forever: reject it for good. The
    // queue's dead-letter settings move it to the service's dead-letter queue.
    console.error(`[${service}] rejected a malformed signup message: ${parsed.reason}`);
    channel.nack(message, false, false);
    return;
  }
  try {
    // Inside the try: a handler that throws before returning its promise is caught too.
    await handle(parsed.event);
  } catch (error) {
    // Requeued, the signup would come straight back and most likely fail the same way, as fast as
    // the broker can deliver it. Rejected without requeue, it is parked in the dead-letter queue
    // and the service goes on with the next one (lesson 10 adds retries with delays).
    console.error(`[${service}] failed to handle signup ${parsed.event.userId}, parked in its dead-letter queue:`, error);
    channel.nack(message, false, false);
    return;
  }
  channel.ack(message);
}
