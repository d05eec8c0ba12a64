import type { Kafka } from 'kafkajs';
import { decodeOrderEvent, MalformedEventError, type DecodedOrderEvent } from './codec.ts';
import { DEFAULT_GROUP_TIMINGS, type GroupTimings } from './kafka.ts';

export interface ReceivedOrderEvent extends DecodedOrderEvent {
  partition: number;
  offset: string;
}

export interface MessageLocation {
  topic: string;
  partition: number;
  offset: string;
}

export interface InventoryConsumerOptions {
  kafka: Kafka;
  topic: string;
  /** Every instance of the inventory service uses the same group id and shares the partitions. */
  groupId: string;
  timings?: GroupTimings;
  /**
   * Handles one event. The events of one partition (so of one order) arrive one at a time, in the
   * order they were published: the next one waits until this one's promise settles.
   */
  handle(received: ReceivedOrderEvent): Promise<void> | void;
  /** Called for a message that is not a valid order event; it is skipped. Defaults to a warning. */
  onMalformed?(error: MalformedEventError, location: MessageLocation): void;
  /** How many times handle() is tried for one event before the event is given up (default 3). */
  maxAttempts?: number;
  /**
   * Called once for an event whose handler threw or rejected on every attempt; the event is then
   * skipped, so the partition behind it keeps flowing. Defaults to an error on the console.
   */
  onHandlerFailed?(error: unknown, received: ReceivedOrderEvent, attempts: number): void;
}

/** The default number of attempts: enough for a passing hiccup, few enough not to stall the partition. */
export const DEFAULT_MAX_ATTEMPTS = 3;
/** The pause before the second attempt; each further attempt waits that much longer. */
export const RETRY_DELAY_MS = 50;

export interface InventoryConsumer {
  /** Leaves the group (its partitions move to the other members at once) and disconnects. */
  stop(): Promise<void>;
}

export async function startInventoryConsumer(options: InventoryConsumerOptions): Promise<InventoryConsumer> {
  const { kafka, topic, groupId, handle } = options;
  const onMalformed = options.onMalformed ??
    ((error, { partition, offset }) => console.warn(`[inventory] skipped ${topic}/${partition}@${offset}: ${error.message}`));
  const onHandlerFailed = options.onHandlerFailed ??
    ((error, { event, partition, offset }, attempts) =>
      console.error(`[inventory] gave up ${event.type} ${event.orderId} at ${topic}/${partition}@${offset} after ${attempts} attempts:`, error));
  const maxAttempts = Math.max(1, options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS);

  // An error that escaped eachMessage would make kafkajs restart the consumer on the same message,
  // forever, with every later event of the partition stuck behind it: retry a few times, then report.
  async function deliver(received: ReceivedOrderEvent): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await handle(received);
        return;
      } catch (error) {
        if (attempt >= maxAttempts) {
          onHandlerFailed(error, received, attempt);
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
    // A brand-new group starts at the oldest retained event instead of only the ones still to come.
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        let decoded: DecodedOrderEvent;
        try {
          decoded = decodeOrderEvent(message);
        } catch (error) {
          if (!(error instanceof MalformedEventError)) throw error;
          // A bad message must not stop the partition behind it: report it and move on.
          onMalformed(error, { topic, partition, offset: message.offset });
          return;
        }
        // Awaited: the partition's next message waits until this one is done.
        await deliver({ ...decoded, partition, offset: message.offset });
      },
    });
  } catch (error) {
    await consumer.disconnect();
    throw error;
  }

  return { stop: () => consumer.disconnect() };
}
