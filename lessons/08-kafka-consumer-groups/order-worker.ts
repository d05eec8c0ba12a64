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
  //     - await options.handle(event, { topic, partition, offset }). If it throws or rejects, do
  //       not let the error escape (kafkajs would start over on this message forever): try again,
  //       up to options.maxAttempts times (DEFAULT_MAX_ATTEMPTS, with a short pause), then call
  //       options.onHandlerFailed (or a console.error) once and carry on;
  //     - only then commit: consumer.commitOffsets([{ topic, partition, offset: <the NEXT offset> }])
  //       and await it. A malformed message is committed too, so it is not read again;
  //  3. return { stop } that disconnects the consumer (it leaves the group).
  throw new Error('TODO: startOrderWorker');
}
