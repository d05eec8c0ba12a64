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
  // TODO:
  //  1. create a consumer: options.kafka.consumer({ groupId, allowAutoTopicCreation: false,
  //     ...(options.timings ?? DEFAULT_GROUP_TIMINGS) }) and connect it (subscribing should never
  //     create a topic with the broker's default partition count);
  //  2. subscribe to the topic so that a brand-new group starts from the oldest retained event;
  //  3. run it with eachMessage: decode the message (decodeOrderEvent) and await options.handle
  //     with the decoded event plus its partition and offset. A MalformedEventError goes to
  //     options.onMalformed (or a console.warn) and the message is skipped: one bad message must
  //     not stop the partition behind it;
  //  4. a handler that throws or rejects must not escape eachMessage (kafkajs would restart on the
  //     same message forever): try it up to options.maxAttempts times (DEFAULT_MAX_ATTEMPTS, with
  //     a short pause between tries), then call options.onHandlerFailed (or a console.error) once
  //     and move on to the next message;
  //  5. return { stop } where stop disconnects the consumer (which leaves the group).
  throw new Error('TODO: startInventoryConsumer');
}
