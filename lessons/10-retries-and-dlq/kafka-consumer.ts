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
  // TODO:
  //  1. a producer (Partitioners.DefaultPartitioner, allowAutoTopicCreation: false) and a consumer
  //     in options.groupId with the timings (or DEFAULT_GROUP_TIMINGS) and allowAutoTopicCreation:
  //     false; connect both and subscribe to topics.source AND topics.retry from the beginning.
  //  2. run with autoCommit: false. In eachMessage ({ topic, partition, message, pause }):
  //     a. a record of topics.retry that is not due yet (notBeforeOf(message.headers) is later
  //        than now): do not wait in eachMessage (no heartbeats, and every partition of this
  //        consumer stalls). consumer.seek({ topic, partition, offset: message.offset }) so it is
  //        read again, const resume = pause(), setTimeout(resume, <ms until due>) (keep the
  //        timers, stop() clears them), and return without committing.
  //     b. attemptOf(message.headers); parseRequest(message.value) (malformed: dead-letter at
  //        once); `await options.handle(request, { attempt, maxAttempts, position })` in try/catch,
  //        so a throw and a rejection both land in the catch; afterFailure(policy, attempt).
  //     c. a failure is forwarded: produce { key, value, headers } with acks: -1 to topics.retry
  //        (headers RETRY_HEADERS.attempt = next.attempt and RETRY_HEADERS.notBefore = now +
  //        next.delayMs) or to topics.deadLetter (DEAD_LETTER_HEADERS.error and .attempts). Keep
  //        the record's own headers (withoutOwnHeaders) and add ORIGIN_HEADERS from
  //        originOf(position, message.headers), so the dead letter names the source record.
  //        If producing fails, throw new ForwardFailed(...): the offset stays uncommitted and
  //        kafkajs reads the record again. Let no other error escape eachMessage: kafkajs would
  //        retry the record, then restart the consumer on it, forever.
  //     d. after a forward, call options.onForwarded (catch and log what it throws); then, and
  //        only then, commit: consumer.commitOffsets([{ topic, partition, offset: nextOffset(...) }]).
  //  3. return { stop } that clears the resume timers and disconnects the consumer and producer.
  throw new Error('TODO: startRetryingConsumer');
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
