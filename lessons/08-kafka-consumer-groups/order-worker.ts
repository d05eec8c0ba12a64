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
}

export interface OrderWorker {
  /** Leaves the group, so its partitions move to the other workers at once, and disconnects. */
  stop(): Promise<void>;
}

/** The offset to commit after processing `offset`: the next one to read, never the one just read. */
export function nextOffset(offset: string): string {
  // TODO: offsets are 64-bit integers in strings; add one without losing precision (BigInt).
  throw new Error('TODO: nextOffset');
}

/**
 * A fulfilment worker: one member of the group, processing its partitions one message at a time
 * and committing each message only after its work is done (at-least-once delivery).
 */
export async function startOrderWorker(options: OrderWorkerOptions): Promise<OrderWorker> {
  // TODO:
  //  1. create a consumer in options.groupId with the timings (or DEFAULT_GROUP_TIMINGS) and
  //     allowAutoTopicCreation: false, connect, and subscribe to the topic from the beginning;
  //  2. run it with auto-commit OFF, and in eachMessage:
  //     - decode the message (decodeOrderEvent); a MalformedEventError goes to options.onMalformed
  //       (or a console.warn) and is not handled;
  //     - await options.handle(event, { topic, partition, offset });
  //     - only then commit: consumer.commitOffsets([{ topic, partition, offset: <the NEXT offset> }])
  //       and await it. A malformed message is committed too, so it is not read again;
  //  3. return { stop } that disconnects the consumer (it leaves the group).
  throw new Error('TODO: startOrderWorker');
}
