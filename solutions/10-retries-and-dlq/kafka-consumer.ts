import { Partitioners, type IHeaders, type Kafka, type KafkaMessage } from 'kafkajs';
import { DEAD_LETTER_HEADERS, ORIGIN_HEADERS, RETRY_HEADERS } from './headers.ts';
import { DEFAULT_GROUP_TIMINGS, type GroupTimings } from './kafka.ts';
import type { RetryTopics } from './kafka-topics.ts';
import { describeError, parseRequest, type LabelRequest } from './requests.ts';
import { afterFailure, maxAttempts, type NextStep, type RetryPolicy } from './retry-policy.ts';

/** Where a record is: a topic, a partition and an offset (a decimal string: offsets are 64-bit). */
export interface RecordPosition {
  topic: string;
  partition: number;
  offset: string;
}

export interface RecordContext {
  /** 1 on the first delivery (from the source topic), 2 on the first retry, … */
  attempt: number;
  maxAttempts: number;
  /** The record being handled now: in the source topic, or in the retry topic. */
  position: RecordPosition;
}

/** The work for one request. It fails by throwing or by rejecting; both mean "not done". */
export type RecordHandler = (request: LabelRequest, context: RecordContext) => Promise<void>;

/** A failed record that the retry or dead-letter topic has acknowledged. */
export interface ForwardedRecord {
  key: string | undefined;
  /** The delivery that failed. */
  attempt: number;
  to: 'retry' | 'dead-letter';
  topic: string;
  reason: string;
}

export interface RetryingConsumerOptions {
  kafka: Kafka;
  topics: RetryTopics;
  /** One group reads both the source and the retry topic. */
  groupId: string;
  policy: RetryPolicy;
  timings?: GroupTimings;
  handle: RecordHandler;
  /**
   * Called after the retry or dead-letter topic has acknowledged a failed record's copy and before
   * the record's offset is committed (for logs and metrics; the checks crash the consumer here).
   */
  onForwarded?(forwarded: ForwardedRecord): void | Promise<void>;
}

export interface RetryingConsumer {
  /** Leaves the group and disconnects; waits for a record in progress. */
  stop(): Promise<void>;
}

/**
 * Consumes the source topic, and the retry topic in the same group. A record whose handler fails
 * is copied to the retry topic with its attempt number and a not-before time, or after the last
 * attempt to the dead-letter topic with where it came from and why it failed, and only then is its
 * offset committed. The partition moves on at once: a failing key does not hold up the keys behind
 * it. If the copy cannot be written, the offset stays uncommitted and kafkajs reads the record again.
 */
export async function startRetryingConsumer(options: RetryingConsumerOptions): Promise<RetryingConsumer> {
  const { kafka, topics, groupId, policy, handle } = options;
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false, ...(options.timings ?? DEFAULT_GROUP_TIMINGS) });
  /** Timers that resume a paused retry partition when its first record is due. */
  const resumeTimers = new Set<NodeJS.Timeout>();

  async function forward(position: RecordPosition, message: KafkaMessage, attempt: number, next: NextStep, reason: string): Promise<ForwardedRecord> {
    const origin = originOf(position, message.headers);
    const headers: IHeaders = {
      ...withoutOwnHeaders(message.headers),
      [ORIGIN_HEADERS.topic]: origin.topic,
      [ORIGIN_HEADERS.partition]: String(origin.partition),
      [ORIGIN_HEADERS.offset]: origin.offset,
    };
    let topic: string;
    if (next.action === 'retry') {
      topic = topics.retry;
      headers[RETRY_HEADERS.attempt] = String(next.attempt);
      headers[RETRY_HEADERS.notBefore] = String(Date.now() + next.delayMs);
    } else {
      topic = topics.deadLetter;
      headers[DEAD_LETTER_HEADERS.error] = reason;
      headers[DEAD_LETTER_HEADERS.attempts] = String(attempt);
    }
    try {
      // The same key keeps every retry of one order in one partition of the retry topic.
      // acks -1: "written" means every in-sync replica has it.
      await producer.send({ topic, acks: -1, messages: [{ key: message.key, value: message.value, headers }] });
    } catch (error) {
      // Not the producer's own error: kafkajs gives up on a consumer for good (no restart) when
      // eachMessage throws an error it marks non-retriable, such as MESSAGE_TOO_LARGE.
      throw new ForwardFailed(`could not write ${position.topic}:${position.partition}@${position.offset} to ${topic}: ${describeError(error)}`, { cause: error });
    }
    return { key: message.key?.toString(), attempt, to: next.action, topic, reason };
  }

  await producer.connect();
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topics.source, topics.retry], fromBeginning: true });
    await consumer.run({
      // Offsets are committed by hand, each only once its record is handled or safely forwarded.
      autoCommit: false,
      eachMessage: async ({ topic, partition, message, pause }) => {
        const position = { topic, partition, offset: message.offset };

        if (topic === topics.retry) {
          const waitMs = notBeforeOf(message.headers) - Date.now();
          if (waitMs > 0) {
            // Not due yet. Waiting here would stop this consumer's heartbeats and every other
            // partition it reads; instead, read this record again later: seek back to it, pause
            // the partition, and resume it when the record is due. The rest keeps flowing.
            consumer.seek({ topic, partition, offset: message.offset });
            const resume = pause();
            const timer = setTimeout(() => {
              resumeTimers.delete(timer);
              resume();
            }, waitMs);
            resumeTimers.add(timer);
            return;
          }
        }

        const attempt = attemptOf(message.headers);
        const parsed = parseRequest(message.value);
        let reason: string | undefined;
        let next: NextStep = { action: 'dead-letter' };
        if (!parsed.ok) {
          // A body that cannot be read will never be readable: no retries.
          reason = `malformed request: ${parsed.reason}`;
        } else {
          try {
            await handle(parsed.request, { attempt, maxAttempts: maxAttempts(policy), position });
          } catch (error) {
            reason = describeError(error);
            next = afterFailure(policy, attempt);
          }
        }

        if (reason !== undefined) {
          // If this throws (ForwardFailed), the error leaves eachMessage on purpose: the offset stays
          // uncommitted and kafkajs reads the record again. Every other failure was caught above:
          // a handler error that escaped would make kafkajs retry the record, then restart the
          // consumer on it, forever, and nothing behind it on the partition would move.
          const forwarded = await forward(position, message, attempt, next, reason);
          try {
            await options.onForwarded?.(forwarded);
          } catch (error) {
            console.error('onForwarded failed:', error);
          }
        }
        // The record is handled, or its copy is safe: the group may move past it.
        await consumer.commitOffsets([{ topic, partition, offset: nextOffset(message.offset) }]);
      },
    });
  } catch (error) {
    await Promise.allSettled([consumer.disconnect(), producer.disconnect()]);
    throw error;
  }

  return {
    async stop() {
      for (const timer of resumeTimers) clearTimeout(timer);
      resumeTimers.clear();
      await consumer.disconnect();
      await producer.disconnect();
    },
  };
}

/**
 * A failed record could not be copied to the retry or dead-letter topic. It leaves eachMessage so
 * the offset stays uncommitted; kafkajs retries it with backoff, then restarts the consumer on it.
 */
export class ForwardFailed extends Error {
  override name = 'ForwardFailed';
}

/** The offset to commit after `offset`: the next one to read. */
export function nextOffset(offset: string): string {
  return (BigInt(offset) + 1n).toString();
}

function headerText(headers: IHeaders | undefined, name: string): string | undefined {
  const raw = headers?.[name];
  return (Array.isArray(raw) ? raw[0] : raw)?.toString();
}

/** From this lesson's own header; a record without it is on its first attempt. */
function attemptOf(headers: IHeaders | undefined): number {
  const value = Number(headerText(headers, RETRY_HEADERS.attempt) ?? 1);
  return Number.isInteger(value) && value >= 1 ? value : 1;
}

/** When a retry record is due (epoch ms); a record without the header is due now. */
function notBeforeOf(headers: IHeaders | undefined): number {
  const value = Number(headerText(headers, RETRY_HEADERS.notBefore) ?? 0);
  return Number.isFinite(value) ? value : 0;
}

/** The record's first position: from the origin headers of a retry record, else its own. */
function originOf(position: RecordPosition, headers: IHeaders | undefined): RecordPosition {
  const topic = headerText(headers, ORIGIN_HEADERS.topic);
  const partition = headerText(headers, ORIGIN_HEADERS.partition);
  const offset = headerText(headers, ORIGIN_HEADERS.offset);
  if (topic === undefined || partition === undefined || offset === undefined) return position;
  return { topic, partition: Number(partition), offset };
}

/** The record's headers without the ones this consumer writes, so a copy never carries two of them. */
function withoutOwnHeaders(headers: IHeaders | undefined): IHeaders {
  const own = new Set<string>([...Object.values(RETRY_HEADERS), ...Object.values(DEAD_LETTER_HEADERS), ...Object.values(ORIGIN_HEADERS)]);
  return Object.fromEntries(Object.entries(headers ?? {}).filter(([name]) => !own.has(name)));
}
