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
  // TODO:
  //  1. create a consumer: options.kafka.consumer({ groupId, allowAutoTopicCreation: false,
  //     ...(options.timings ?? DEFAULT_GROUP_TIMINGS) }) and connect it (subscribing should never
  //     create a topic with the broker's default partition count);
  //  2. subscribe to the topic so that a brand-new group starts from the oldest retained event;
  //  3. run it with eachMessage: decode the message (decodeOrderEvent) and await options.handle
  //     with the decoded event plus its partition and offset. A MalformedEventError goes to
  //     options.onMalformed (or a console.warn) and the message is skipped: one bad message must
  //     not stop the partition behind it;
  //  4. return { stop } where stop disconnects the consumer (which leaves the group).
  throw new Error('TODO: startInventoryConsumer');
}
