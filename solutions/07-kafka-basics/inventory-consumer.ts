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
  /** Handles one event; events of one order arrive one at a time, in the order they were published. */
  handle(received: ReceivedOrderEvent): Promise<void> | void;
  /** Called for a message that is not a valid order event; it is skipped. Defaults to a warning. */
  onMalformed?(error: MalformedEventError, location: MessageLocation): void;
}

export interface InventoryConsumer {
  /** Leaves the group (its partitions move to the other members at once) and disconnects. */
  stop(): Promise<void>;
}

export async function startInventoryConsumer(options: InventoryConsumerOptions): Promise<InventoryConsumer> {
  const { kafka, topic, groupId, handle } = options;
  const onMalformed = options.onMalformed ??
    ((error, { partition, offset }) => console.warn(`[inventory] skipped ${topic}/${partition}@${offset}: ${error.message}`));

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
        await handle({ ...decoded, partition, offset: message.offset });
      },
    });
  } catch (error) {
    await consumer.disconnect();
    throw error;
  }

  return { stop: () => consumer.disconnect() };
}
