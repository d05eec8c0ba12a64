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
  // Before consuming: the broker sends at most `prefetch` unacknowledged messages to this consumer.
  await channel.prefetch(options.prefetch);

  const { consumerTag } = await channel.consume(
    queue,
    (message) => {
      // null: the broker cancelled this consumer (its queue was deleted).
      if (message === null) return;
      const settled: Promise<void> = processDelivery(channel, message, handle, name)
        .catch((error: unknown) => console.error(`[${name}] could not settle a delivery:`, error))
        .finally(() => inProgress.delete(settled));
      inProgress.add(settled);
    },
    { noAck: false },
  );

  return {
    consumerTag,
    async stop() {
      await channel.cancel(consumerTag);
      await Promise.allSettled([...inProgress]);
    },
  };
}

async function processDelivery(channel: Channel, message: ConsumeMessage, handle: PaymentHandler, name: string): Promise<void> {
  const parsed = parsePaymentMessage(message.content, message.properties.messageId);
  if (!parsed.ok) {
    // It will never parse: requeueing it would loop forever. Rejected, it goes to the dead-letter queue.
    console.error(`[${name}] rejected a malformed message: ${parsed.reason}`);
    channel.nack(message, false, false);
    return;
  }
  const { event } = parsed;
  const { redelivered } = message.fields;
  try {
    await handle(event, { redelivered });
  } catch (error) {
    // The handler rolled back, so a redelivery starts from scratch. One more try, then dead-letter.
    const requeue = !redelivered;
    console.error(`[${name}] ${event.eventId} failed${requeue ? ', requeued for one more try' : ', dead-lettered'}:`, error);
    channel.nack(message, false, requeue);
    return;
  }
  // Only after the commit. A crash before this line makes the broker deliver the event again,
  // and the processed-event row turns that redelivery into a duplicate.
  channel.ack(message);
}
