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
  // TODO:
  // 1. declare the exchange and this service's queue (topology.ts);
  // 2. consume from the queue with manual acknowledgements ({ noAck: false }); for each message
  //    (null means the broker cancelled the consumer: ignore it) call deliver(...) below, and
  //    .catch() its promise so a failure is logged instead of becoming an unhandled rejection;
  // 3. return { queue, consumerTag }.
  throw new Error('TODO: startSignupSubscriber');
}

async function deliver(channel: Channel, message: ConsumeMessage, handle: SignupHandler, service: string): Promise<void> {
  // TODO: parse the body with parseSignup(message.content).
  // - Malformed: log the reason with console.error and reject it for good with
  //   channel.nack(message, false, false); requeueing it would fail again, forever.
  //   The queue's dead-letter settings (topology.ts) move it to the dead-letter queue.
  // - Valid: await handle(event), then channel.ack(message). If the handler fails (it may throw
  //   before returning a promise, or its promise may reject), log it with console.error, naming the
  //   signup's userId and the error, and reject it without requeue too: requeued, it would come
  //   straight back and fail again, as fast as the broker can deliver it.
  throw new Error('TODO: deliver');
}
