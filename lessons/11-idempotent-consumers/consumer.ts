import type { Channel, ConsumeMessage } from 'amqplib';
import { parsePaymentMessage, type PaymentRequested } from './events.ts';

export interface Delivery {
  /** True when the broker delivered this message before, to a consumer that did not settle it. */
  redelivered: boolean;
}

/** The work for one event. It resolves once its effect is committed, and rejects if nothing was. */
export type PaymentHandler = (event: PaymentRequested, delivery: Delivery) => Promise<unknown>;

export interface ConsumerOptions {
  /** The most deliveries this consumer holds unacknowledged, and so works on, at a time. */
  prefetch: number;
  /** Used in log lines. */
  name?: string;
}

export interface PaymentConsumer {
  consumerTag: string;
  /** Stops taking deliveries and resolves once every delivery in progress is settled. */
  stop(): Promise<void>;
}

/**
 * Consumes payment.requested messages with manual acknowledgements. A delivery is acknowledged
 * only after its handler has committed; a failed one is requeued once, then rejected to the
 * queue's dead-letter queue; a malformed one is rejected at once.
 */
export async function startPaymentConsumer(
  channel: Channel,
  queue: string,
  handle: PaymentHandler,
  options: ConsumerOptions,
): Promise<PaymentConsumer> {
  const name = options.name ?? 'payments';
  const inProgress = new Set<Promise<void>>();
  // TODO:
  // 1. limit the unacknowledged deliveries the broker sends this consumer (options.prefetch), before
  //    consuming;
  // 2. consume the queue with manual acknowledgements. For each message (null means the broker
  //    cancelled the consumer: ignore it), call processDelivery(...) below, add its promise to
  //    inProgress and delete it once settled, and .catch() it so a failure is logged instead of
  //    becoming an unhandled rejection;
  // 3. return { consumerTag, stop }, where stop() cancels the consumer (channel.cancel) and then
  //    waits for every promise in inProgress to settle.
  throw new Error('TODO: startPaymentConsumer');
}

async function processDelivery(channel: Channel, message: ConsumeMessage, handle: PaymentHandler, name: string): Promise<void> {
  // TODO: parse with parsePaymentMessage(message.content, message.properties.messageId).
  // - Malformed: log the reason and reject the message without requeue (it goes to the dead-letter
  //   queue; requeued, it would come back forever).
  // - Valid: `await handle(event, { redelivered: message.fields.redelivered })`, and acknowledge the
  //   message only after that resolved: the handler has committed. If it rejects, log it and nack
  //   the message, requeueing it only if it was not already redelivered.
  throw new Error('TODO: processDelivery');
}
