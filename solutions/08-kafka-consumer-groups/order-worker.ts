import type { Kafka } from 'kafkajs';
import { decodeOrderEvent, MalformedEventError } from './codec.ts';
import type { OrderEvent } from './events.ts';
import { DEFAULT_GROUP_TIMINGS, type GroupTimings } from './kafka.ts';

export interface MessagePosition {
  topic: string;
  partition: number;
  offset: string;
}

export interface OrderWorkerOptions {
  kafka: Kafka;
  topic: string;
  /** All workers share one group id: Kafka gives each partition to exactly one of them. */
  groupId: string;
  timings?: GroupTimings;
  /** The work for one event. The worker commits the event only after this resolves. */
  handle(event: OrderEvent, position: MessagePosition): Promise<void> | void;
  /** A message that is not a valid order event; it is committed and skipped. Defaults to a warning. */
  onMalformed?(error: MalformedEventError, position: MessagePosition): void;
  /** How many times handle() is tried for one event before the event is given up (default 3). */
  maxAttempts?: number;
  /**
   * Called once for an event whose handler threw or rejected on every attempt; the event is then
   * committed and skipped, so the partition behind it keeps flowing. Defaults to a console error.
   */
  onHandlerFailed?(error: unknown, event: OrderEvent, position: MessagePosition, attempts: number): void;
}

/** The default number of attempts: enough for a passing hiccup, few enough not to stall the partition. */
export const DEFAULT_MAX_ATTEMPTS = 3;
/** The pause before the second attempt; each further attempt waits that much longer. */
export const RETRY_DELAY_MS = 50;

export interface OrderWorker {
  /** Leaves the group, so its partitions move to the other workers at once, and disconnects. */
  stop(): Promise<void>;
}

/** The offset to commit after processing `offset`: the next one to read, never the one just read. */
export function nextOffset(offset: string): string {
  return (BigInt(offset) + 1n).toString();
}

/**
 * A fulfilment worker: one member of the group, processing its partitions one message at a time
 * and committing each message only after its work is done (at-least-once delivery).
 */
export async function startOrderWorker(options: OrderWorkerOptions): Promise<OrderWorker> {
  const { kafka, topic, groupId, handle } = options;
  const onMalformed = options.onMalformed ??
    ((error, { partition, offset }) => console.warn(`[worker] skipped ${topic}/${partition}@${offset}: ${error.message}`));
  const onHandlerFailed = options.onHandlerFailed ??
    ((error, event, { partition, offset }, attempts) =>
      console.error(`[worker] gave up ${event.type} ${event.orderId} at ${topic}/${partition}@${offset} after ${attempts} attempts:`, error));
  const maxAttempts = Math.max(1, options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS);

  // An error that escaped eachMessage would make kafkajs start over on the same message, forever,
  // with the partition stuck behind it: retry a few times, then report the event and go on.
  async function handleWithRetries(event: OrderEvent, position: MessagePosition): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await handle(event, position);
        return;
      } catch (error) {
        if (attempt >= maxAttempts) {
          onHandlerFailed(error, event, position, attempt);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS * attempt));
      }
    }
  }

  // Topics are created on purpose, with a chosen partition count, never as a side effect of subscribing.
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false, ...(options.timings ?? DEFAULT_GROUP_TIMINGS) });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      // Auto-commit would commit on a timer, whether or not the work behind an offset is done.
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const position = { topic, partition, offset: message.offset };
        let event: OrderEvent | undefined;
        try {
          event = decodeOrderEvent(message).event;
        } catch (error) {
          if (!(error instanceof MalformedEventError)) throw error;
          onMalformed(error, position);
        }
        if (event) await handleWithRetries(event, position);

        // Only now is the message done. A crash before this line means it is delivered again
        // (a duplicate the handler must tolerate); committing earlier could lose it instead.
        await consumer.commitOffsets([{ topic, partition, offset: nextOffset(message.offset) }]);
      },
    });
  } catch (error) {
    await consumer.disconnect();
    throw error;
  }

  return { stop: () => consumer.disconnect() };
}
