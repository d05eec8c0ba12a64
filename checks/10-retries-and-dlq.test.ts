import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { GetMessage, MessagePropertyHeaders } from 'amqplib';
import { ConfigResourceTypes, type IHeaders, type KafkaMessage, type Message, type Producer } from 'kafkajs';
import { UNSERVED_POSTCODE } from '@lesson/10-retries-and-dlq/carrier.ts';
import { DEAD_LETTER_HEADERS, ORIGIN_HEADERS, RETRY_HEADERS } from '@lesson/10-retries-and-dlq/headers.ts';
import { startRetryingConsumer, type RecordHandler, type RecordPosition } from '@lesson/10-retries-and-dlq/kafka-consumer.ts';
import type { RetryTopics } from '@lesson/10-retries-and-dlq/kafka-topics.ts';
import { assertRetryTopology, retryTopology, type RetryTopology } from '@lesson/10-retries-and-dlq/rabbit-topology.ts';
import { startRetryingWorker, type RequestHandler } from '@lesson/10-retries-and-dlq/rabbit-worker.ts';
import type { LabelRequest } from '@lesson/10-retries-and-dlq/requests.ts';
import { afterFailure, type RetryPolicy } from '@lesson/10-retries-and-dlq/retry-policy.ts';
import { describe, expect, test } from './support/fixtures.ts';
import { CHECK_GROUP_TIMINGS, groupTimingsEnv, headerText, type KafkaTestKit } from './support/kafka.ts';
import { gradedFolder } from './support/lesson.ts';
import type { LessonProcess } from './support/processes.ts';
import { CLASSIC_QUEUE, isAmqpError, type RabbitScope } from './support/rabbitmq.ts';
import { serviceEnv } from './support/services.ts';
import { within } from './support/polling.ts';

const SLUG = '10-retries-and-dlq';
const WHERE = gradedFolder(SLUG);
const POLICY_FILE = `${WHERE}/retry-policy.ts`;
const TOPOLOGY_FILE = `${WHERE}/rabbit-topology.ts`;
const WORKER_FILE = `${WHERE}/rabbit-worker.ts`;
const CONSUMER_FILE = `${WHERE}/kafka-consumer.ts`;

/** Timer granularity: a retry may come this much before its delay has fully passed. */
const EARLY_MS = 10;
/** How late a retry may come. Generous (the machine is busy); a retry scheduled wrongly is seconds off. */
const RABBIT_LATE_MS = 1_500;
/** On Kafka a resumed partition is read at the next fetch, which waits up to maxWaitTimeInMs (200 ms here). */
const KAFKA_LATE_MS = 2_000;

// ---------------------------------------------------------------------------------------------
// What the checks record and wait for

interface Delivery {
  id: string;
  attempt: number;
  at: number;
  redelivered?: boolean;
  position?: RecordPosition;
}

/** Every delivery the check's handler saw, in order. */
class DeliveryLog {
  readonly entries: Delivery[] = [];

  add(entry: Omit<Delivery, 'at'>): void {
    this.entries.push({ ...entry, at: Date.now() });
  }

  of(id: string): Delivery[] {
    return this.entries.filter((entry) => entry.id === id);
  }

  count(id: string): number {
    return this.of(id).length;
  }

  attempts(id: string): number[] {
    return this.of(id).map((entry) => entry.attempt);
  }

  /** Milliseconds between one delivery of `id` and the next. */
  gaps(id: string): number[] {
    const times = this.of(id).map((entry) => entry.at);
    return times.slice(1).map((at, i) => at - times[i]!);
  }
}

/**
 * Polls until `missing()` returns null. Throws what it last returned at the deadline, and at once
 * whatever `broken()` returns (a message delivered more often than allowed: no use waiting).
 */
async function waitUntil(
  missing: () => string | null | Promise<string | null>,
  timeoutMs: number,
  broken: () => string | null = () => null,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const fatal = broken();
    if (fatal) throw new Error(fatal);
    const reason = await missing();
    if (reason === null) return;
    if (Date.now() > deadline) throw new Error(reason);
    await sleep(50);
  }
}

function labelRequest(tag: string, postcode = '10115'): LabelRequest {
  return { requestId: `${tag}-${randomUUID().slice(0, 8)}`, orderId: `order-${randomUUID().slice(0, 8)}`, postcode, weightGrams: 1_200 };
}

function body(request: LabelRequest): Buffer {
  return Buffer.from(JSON.stringify(request));
}

/** A handler that records every delivery and fails for the ids in `failing`, by rejecting or by throwing. */
function failingFor(failing: Map<string, 'reject' | 'throw'>, log: DeliveryLog, extra?: (request: LabelRequest, attempt: number) => Promise<void>) {
  return (request: LabelRequest, attempt: number, more: Omit<Delivery, 'id' | 'attempt' | 'at'>): Promise<void> => {
    log.add({ id: request.requestId, attempt, ...more });
    const how = failing.get(request.requestId);
    if (how === 'throw') throw new Error(`the carrier refused ${request.requestId} (thrown)`);
    return (async () => {
      await extra?.(request, attempt);
      if (how === 'reject') {
        await sleep(5);
        throw new Error(`the carrier refused ${request.requestId} (rejected)`);
      }
    })();
  };
}

/** The retry policy must be right before any broker requirement can be judged. */
function expectPolicy(policy: RetryPolicy): void {
  policy.delaysMs.forEach((delayMs, i) => {
    expect(afterFailure(policy, i + 1), `afterFailure(${JSON.stringify(policy)}, ${i + 1}) should schedule attempt ${i + 2} ` +
      `after ${delayMs} ms (${POLICY_FILE})`).toEqual({ action: 'retry', attempt: i + 2, delayMs });
  });
  expect(afterFailure(policy, policy.delaysMs.length + 1), `afterFailure(${JSON.stringify(policy)}, ${policy.delaysMs.length + 1}) ` +
    `is the last attempt's failure: it should dead-letter (${POLICY_FILE})`).toEqual({ action: 'dead-letter' });
}

function tooMany(log: DeliveryLog, id: string, allowed: number, file: string): string | null {
  const count = log.count(id);
  if (count <= allowed) return null;
  const attempts = log.attempts(id);
  const fastest = Math.min(...log.gaps(id));
  let why = 'Retries must be bounded: after the last attempt, dead-letter the message.';
  if (new Set(attempts).size < attempts.length) {
    why = `The attempt number did not grow (${attempts.join(', ')}): a message requeued with nack(message, false, true), or ` +
      `a copy without a raised retry-attempt header, comes back as the same attempt forever.`;
  }
  if (fastest < 20) why += ` Two deliveries came ${fastest} ms apart: that is a requeue, not a delayed retry.`;
  return `message ${id} was delivered ${count} times; the policy allows ${allowed} (the first delivery plus one per delay). ${why} (${file})`;
}

function gapProblem(gaps: number[], delays: readonly number[], lateMs: number, file: string): string | null {
  for (const [i, delay] of delays.entries()) {
    const gap = gaps[i];
    if (gap === undefined) continue;
    if (gap < delay - EARLY_MS) {
      return `retry ${i + 1} came ${gap} ms after the failure before it; the policy says wait ${delay} ms first. ` +
        `Each retry must wait its delay (${file})`;
    }
    if (gap > delay + lateMs) {
      return `retry ${i + 1} came ${gap} ms after the failure before it, for a delay of ${delay} ms (allowed: up to ` +
        `${delay + lateMs} ms). Something held it back (${file})`;
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// RabbitMQ plumbing

function registerTopology(rabbit: RabbitScope, topology: RetryTopology): void {
  rabbit.exchange(topology.exchange);
  for (const queue of [topology.queue, topology.deadLetterQueue, ...topology.retryQueues.map((retry) => retry.name)]) rabbit.queue(queue);
}

/** A topology of the test's own, declared by the learner's assertRetryTopology. */
async function declaredTopology(rabbit: RabbitScope, name: string, delaysMs: number[]): Promise<RetryTopology> {
  const topology = retryTopology(name, { delaysMs });
  registerTopology(rabbit, topology);
  await assertRetryTopology(await rabbit.channel(), topology);
  return topology;
}

interface RabbitForward {
  id: string | undefined;
  to: string;
  queue: string;
  at: number;
}

/** Starts the learner's worker on a connection of its own, as a separate service would run. */
async function rabbitWorker(rabbit: RabbitScope, topology: RetryTopology, handle: RequestHandler, prefetch = 5, forwards: RabbitForward[] = []) {
  const connection = await rabbit.connect();
  const channel = await rabbit.confirmChannel(connection);
  await startRetryingWorker(channel, topology, handle, {
    prefetch,
    name: 'check-worker',
    onForwarded: ({ messageId, to, queue }) => void forwards.push({ id: messageId, to, queue, at: Date.now() }),
  });
  return { connection, channel };
}

/** The check's own way to put messages in the work queue (through the default exchange). */
async function sendToWork(rabbit: RabbitScope, queue: string, messages: Array<{ id: string; content: Buffer; headers?: MessagePropertyHeaders }>): Promise<void> {
  const channel = await rabbit.confirmChannel();
  for (const { id, content, headers } of messages) {
    channel.sendToQueue(queue, content, { persistent: true, contentType: 'application/json', messageId: id, headers });
  }
  await channel.waitForConfirms();
}

async function exchangeExists(rabbit: RabbitScope, exchange: string): Promise<boolean> {
  const channel = await rabbit.channel();
  try {
    await channel.checkExchange(exchange);
    return true;
  } catch (error) {
    if (isAmqpError(error, 404)) return false;
    throw error;
  } finally {
    await channel.close().catch(() => {});
  }
}

/** Where the test's messages are now, for a failure message. */
async function whereMessagesAre(rabbit: RabbitScope, topology: RetryTopology): Promise<string> {
  const count = async (queue: string) => `${queue}: ${(await rabbit.readyMessages(queue)) ?? 'does not exist'}`;
  const queues = [topology.queue, ...topology.retryQueues.map((retry) => retry.name), topology.deadLetterQueue];
  const counts = await Promise.all(queues.map(count));
  const exchange = (await exchangeExists(rabbit, topology.exchange)) ? 'exists' : 'DOES NOT EXIST';
  return `Messages ready now: ${counts.join(', ')}; exchange ${topology.exchange} ${exchange}.`;
}

/** Collects dead letters as they arrive (taking them off the DLQ). */
class DeadLetters {
  readonly messages: GetMessage[] = [];

  constructor(private readonly rabbit: RabbitScope, private readonly queue: string) {}

  async collect(): Promise<GetMessage[]> {
    this.messages.push(...(await this.rabbit.drain(this.queue)));
    return this.messages;
  }

  of(id: string): GetMessage[] {
    return this.messages.filter((message) => message.properties.messageId === id);
  }
}

/** Waits for every id to be dead-lettered, failing early when one is delivered more than `allowed` times. */
async function waitForDeadLetters(rabbit: RabbitScope, topology: RetryTopology, dead: DeadLetters, log: DeliveryLog, ids: string[], allowed: number, timeoutMs: number): Promise<void> {
  await waitUntil(
    async () => {
      await dead.collect();
      const missing = ids.filter((id) => dead.of(id).length === 0);
      if (missing.length === 0) return null;
      const seen = missing.map((id) => `${id} was delivered ${log.count(id)} time(s) (attempts ${log.attempts(id).join(', ') || 'none'})`);
      return `not dead-lettered within ${timeoutMs / 1000} s: ${seen.join('; ')}. ${await whereMessagesAre(rabbit, topology)} ` +
        'A message that vanishes after its first failure was forwarded to a retry queue whose dead-letter exchange does not ' +
        `exist or does not route back to the work queue (${TOPOLOGY_FILE}); one delivered only once was treated as done ` +
        `or never forwarded (${WORKER_FILE}).`;
    },
    timeoutMs,
    () => ids.map((id) => tooMany(log, id, allowed, WORKER_FILE)).find(Boolean) ?? null,
  );
}

function header(message: GetMessage, name: string): unknown {
  return message.properties.headers?.[name];
}

function expectDeadLetter(message: GetMessage, original: Buffer, attempts: number, reason: RegExp, topology: RetryTopology): void {
  const id = String(message.properties.messageId);
  expect(message.content.equals(original), `the dead letter of ${id} should carry the original body, byte for byte (${WORKER_FILE})`).toBe(true);
  expect(Number(header(message, DEAD_LETTER_HEADERS.attempts)), `the dead letter of ${id} should say how many deliveries failed in ` +
    `its "${DEAD_LETTER_HEADERS.attempts}" header (${WORKER_FILE}); its headers were ${JSON.stringify(message.properties.headers)}`).toBe(attempts);
  expect(String(header(message, DEAD_LETTER_HEADERS.error) ?? ''), `the dead letter of ${id} should carry the last failure's reason in ` +
    `its "${DEAD_LETTER_HEADERS.error}" header (${WORKER_FILE})`).toMatch(reason);
  expect(header(message, DEAD_LETTER_HEADERS.queue), `the dead letter of ${id} should name the work queue it failed in, in its ` +
    `"${DEAD_LETTER_HEADERS.queue}" header (${WORKER_FILE})`).toBe(topology.queue);
  expect(message.properties.deliveryMode, `the dead letter of ${id} must be persistent, or a broker restart deletes it (${WORKER_FILE})`).toBe(2);
}

// ---------------------------------------------------------------------------------------------
// Kafka plumbing

/** Source, retry and dead-letter topics of the test's own; `refusing` rejects every record (max.message.bytes = 1). */
async function kafkaTopics(kafka: KafkaTestKit, partitions: number, refusing?: keyof RetryTopics): Promise<RetryTopics> {
  const topics: RetryTopics = {
    source: kafka.topicName('label-requests'),
    retry: kafka.topicName('label-requests-retry'),
    deadLetter: kafka.topicName('label-requests-dlq'),
  };
  const names = Object.values(topics);
  const admin = await kafka.adminFor(topics.source);
  await admin.createTopics({
    // kafkajs's own wait gives up when a new topic is not in the metadata yet (a busy broker):
    // wait here instead, until every partition of the three topics has a leader.
    waitForLeaders: false,
    topics: (Object.keys(topics) as Array<keyof RetryTopics>).map((role) => ({
      topic: topics[role],
      numPartitions: partitions,
      replicationFactor: 1,
      ...(role === refusing ? { configEntries: [{ name: 'max.message.bytes', value: '1' }] } : {}),
    })),
  });
  await waitUntil(async () => {
    try {
      const { topics: described } = await admin.fetchTopicMetadata({ topics: names });
      const led = described.every((topic) => topic.partitions.length === partitions && topic.partitions.every((p) => p.leader >= 0));
      if (!led) return `the topics ${names.join(', ')} have no leaders yet`;
      // Only the leader answers for a partition's offsets: once it does, records can be written.
      await Promise.all(names.map((topic) => admin.fetchTopicOffsets(topic)));
      return null;
    } catch (error) {
      return `the topics ${names.join(', ')} are not ready: ${error instanceof Error ? error.message : String(error)}`;
    }
  }, 20_000);
  return topics;
}

async function acceptRecordsAgain(kafka: KafkaTestKit, topic: string): Promise<void> {
  await (await kafka.adminFor(topic)).alterConfigs({
    validateOnly: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'max.message.bytes', value: '1048588' }] }],
  });
}

/** Produces one record and returns where the broker put it. */
async function produceOne(producer: Producer, topic: string, message: Message): Promise<RecordPosition> {
  const [written] = await producer.send({ topic, acks: -1, messages: [message] });
  if (!written) throw new Error(`the broker did not say where it wrote to ${topic}`);
  return { topic, partition: written.partition, offset: written.baseOffset ?? '' };
}

function record(request: LabelRequest, headers?: IHeaders): Message {
  return { key: request.orderId, value: body(request), headers };
}

interface KafkaForward {
  key: string | undefined;
  to: string;
  topic: string;
  at: number;
}

/** Starts the learner's consumer in this process with the check's group timings. */
async function kafkaConsumer(kafka: KafkaTestKit, topics: RetryTopics, policy: RetryPolicy, handle: RecordHandler, forwards: KafkaForward[] = []) {
  const groupId = kafka.groupId('label-service');
  const consumer = await startRetryingConsumer({
    kafka: kafka.client('label-consumer'),
    topics,
    groupId,
    policy,
    timings: { ...CHECK_GROUP_TIMINGS },
    handle,
    onForwarded: ({ key, to, topic }) => void forwards.push({ key, to, topic, at: Date.now() }),
  });
  kafka.cleanup(() => consumer.stop());
  return { groupId };
}

function kafkaHandler(failing: Map<string, 'reject' | 'throw'>, log: DeliveryLog, extra?: (request: LabelRequest, attempt: number) => Promise<void>): RecordHandler {
  const handle = failingFor(failing, log, extra);
  return (request, { attempt, position }) => handle(request, attempt, { position });
}

async function totalRecords(kafka: KafkaTestKit, topic: string): Promise<number> {
  return [...(await kafka.latestOffsets(topic)).values()].reduce((sum, high) => sum + high, 0);
}

/** Reads every record now in `topic` (the check knows how many there are). */
async function readAll(kafka: KafkaTestKit, topic: string): Promise<KafkaMessage[]> {
  const count = await totalRecords(kafka, topic);
  return count === 0 ? [] : kafka.readMessages(topic, count);
}

async function waitForKafkaDeadLetters(kafka: KafkaTestKit, topics: RetryTopics, log: DeliveryLog, ids: string[], allowed: number, timeoutMs: number): Promise<void> {
  await waitUntil(
    async () => {
      const dead = await totalRecords(kafka, topics.deadLetter);
      if (dead >= ids.length) return null;
      const seen = ids.map((id) => `${id} was delivered ${log.count(id)} time(s) (attempts ${log.attempts(id).join(', ') || 'none'})`);
      const retries = await totalRecords(kafka, topics.retry);
      return kafka.withHandlerErrors(`the dead-letter topic holds ${dead} of the ${ids.length} record(s) that always fail, after ` +
        `${timeoutMs / 1000} s: ${seen.join('; ')}; the retry topic holds ${retries} record(s). After the last attempt, produce the ` +
        `record to the dead-letter topic and commit its offset, without letting the error escape eachMessage (${CONSUMER_FILE})`);
    },
    timeoutMs,
    () => ids.map((id) => tooMany(log, id, allowed, CONSUMER_FILE)).find(Boolean) ?? null,
  );
}

function attemptsHeader(message: KafkaMessage): string | undefined {
  return headerText(message.headers, DEAD_LETTER_HEADERS.attempts);
}

function requestIdOf(message: KafkaMessage): string | undefined {
  try {
    return (JSON.parse(message.value?.toString() ?? '') as { requestId?: string }).requestId;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Lesson processes

/** Waits for either of two outputs; the first to appear wins. */
async function firstOf(process: LessonProcess, wanted: RegExp, instead: RegExp, timeoutMs: number): Promise<'wanted' | 'instead' | 'neither'> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (wanted.test(process.output())) return 'wanted';
    if (instead.test(process.output())) {
      // Give the wanted line a moment: the two may be printed close together.
      await sleep(1_000);
      return wanted.test(process.output()) ? 'wanted' : 'instead';
    }
    const todo = /\bTODO: ([\w.]+)/.exec(process.output());
    if (todo) throw new Error(`TODO: ${todo[1]}`);
    if (!process.running) break;
    await sleep(25);
  }
  return 'neither';
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// ---------------------------------------------------------------------------------------------

describe.concurrent('10 retries-and-dlq', () => {
  // vitest runs at most 5 of these at a time (maxConcurrency), in the order they are written: the
  // slowest come first, so the short ones fill the gaps and the verdict takes as long as the longest.

  test('a retry delay longer than the session timeout neither blocks new records nor costs the consumer its place in the group', async ({ kafka }) => {
    // Longer than CHECK_GROUP_TIMINGS.sessionTimeout (6 s, the smallest the broker accepts by default).
    const delays = [7_000];
    const policy = { delaysMs: delays };
    expectPolicy(policy);
    const topics = await kafkaTopics(kafka, 1);
    const log = new DeliveryLog();
    const poison = labelRequest('poison');
    const later = labelRequest('later');
    const producer = await kafka.producer();
    await produceOne(producer, topics.source, record(poison));
    const { groupId } = await kafkaConsumer(kafka, topics, policy, kafkaHandler(new Map([[poison.requestId, 'reject']]), log));

    await waitUntil(() => (log.count(poison.requestId) > 0 ? null : kafka.withHandlerErrors(`the consumer never handled the first record (${CONSUMER_FILE})`)), 8_000);
    const members = async () => {
      const group = await kafka.groupMembers(groupId, topics.source);
      return `${group.state}: ${group.members.map((member) => member.memberId).join(', ') || 'no members'}`;
    };
    let membership = '';
    await waitUntil(async () => {
      membership = await members();
      return membership.startsWith('Stable: ') ? null : `the group never became stable (${membership})`;
    }, 5_000);
    await sleep(300);
    const producedAt = Date.now();
    await produceOne(producer, topics.source, record(later));
    const changes: string[] = [];
    await waitUntil(async () => {
      const now = await members();
      if (now !== membership && !changes.includes(now)) changes.push(now);
      return log.count(poison.requestId) >= 2 ? null : `the failing record was not retried within ${delays[0]! + KAFKA_LATE_MS} ms of ` +
        `its first failure, although its delay is ${delays[0]} ms (${CONSUMER_FILE})`;
    }, delays[0]! + KAFKA_LATE_MS + 1_000, () => tooMany(log, poison.requestId, 2, CONSUMER_FILE));

    const handled = log.of(later.requestId)[0];
    expect(handled ? handled.at - producedAt : Number.POSITIVE_INFINITY, `a record produced while the failing one waited ${delays[0]} ms ` +
      `for its retry was handled ${handled ? `${handled.at - producedAt} ms after it was produced` : 'not at all by the time the retry came'}: ` +
      `the wait held the consumer. Do not sleep in ` +
      'eachMessage until a retry is due: seek back to the record, pause its partition (the pause function eachMessage gets), ' +
      `and resume it when the record is due; the other partitions keep flowing (${CONSUMER_FILE})`).toBeLessThanOrEqual(3_000);
    expect(changes, `the consumer's group membership changed while a retry waited (it was "${membership}"). A consumer that does not ` +
      'return from eachMessage sends no heartbeats, and after the session timeout the broker drops it from the group. Pause the ' +
      `partition instead of waiting in eachMessage (${CONSUMER_FILE})`).toEqual([]);
    const [gap] = log.gaps(poison.requestId);
    expect(gap, `the retry came ${gap} ms after the failure; its delay is ${delays[0]} ms (${CONSUMER_FILE})`).toBeGreaterThanOrEqual(delays[0]! - EARLY_MS);
  }, 30_000);

  test('a worker killed after forwarding a failed message and before acking it loses nothing (a duplicate is acceptable)', async ({ rabbit, procs, unique }) => {
    const delays = [300, 100];
    expectPolicy({ delaysMs: delays });
    const name = unique('labels');
    const topology = retryTopology(name, { delaysMs: delays });
    registerTopology(rabbit, topology);
    const env = { ...serviceEnv('rabbitmq'), WORK_QUEUE: name, RETRY_DELAYS_MS: delays.join(','), PREFETCH: '1' };
    const first = procs.start(SLUG, 'rabbit-main.ts', { env: { ...env, WORKER_NAME: 'worker-a', CRASH_AFTER_FORWARD: '1' }, name: 'worker-a (rabbit-main.ts)' });
    // Starting a TypeScript process takes seconds on a busy machine: generous start-up deadlines.
    await first.waitForOutput(/ready: consuming/, 'reported it was ready', 30_000);
    const poison = labelRequest('crash', UNSERVED_POSTCODE);
    const id = escapeRegExp(poison.requestId);
    await sendToWork(rabbit, topology.queue, [{ id: poison.requestId, content: body(poison) }]);

    const crash = await within(15_000, first.exited, () => `worker-a should have forwarded the failed request to a retry queue ` +
      `and then crashed (CRASH_AFTER_FORWARD=1 kills it in onForwarded). It is still running; its output:\n${first.output()}`);
    expect(crash.signal, `worker-a should have been killed in onForwarded, after the broker confirmed the retry copy; it exited with ` +
      `code ${crash.code}. Call options.onForwarded after the confirm and before the ack (${WORKER_FILE}). Its output:\n${first.output()}`).toBe('SIGKILL');
    expect(first.output(), `worker-a's first forward should send attempt 1 of ${poison.requestId} to a retry queue (${WORKER_FILE})`)
      .toMatch(new RegExp(`forwarded ${id} attempt=1 to retry`));

    const second = procs.start(SLUG, 'rabbit-main.ts', { env: { ...env, WORKER_NAME: 'worker-b' }, name: 'worker-b (rabbit-main.ts)' });
    await second.waitForOutput(/ready: consuming/, 'reported it was ready', 30_000);
    const seen = await firstOf(second, new RegExp(`delivery ${id} attempt=1/3 redelivered=true`), new RegExp(`delivery ${id} attempt=2/3`), 10_000);
    expect(seen, seen === 'instead'
      ? `worker-a was killed after its retry copy was confirmed, before it acknowledged the original, so the broker should have ` +
        `redelivered the original (attempt 1, redelivered) to worker-b; worker-b only got the retry copy. The original had been ` +
        `acknowledged too early: a crash between that ack and the forward loses the message. Ack after the confirm (${WORKER_FILE}).`
      : `worker-b never received ${poison.requestId} after worker-a was killed. Its output:\n${second.output()}`).toBe('wanted');

    // Both copies run their course: the redelivered original and the retry copy worker-a had forwarded.
    const dead = new DeadLetters(rabbit, topology.deadLetterQueue);
    await waitUntil(async () => ((await dead.collect()).length >= 2 ? null : 'waiting for both copies'), 4_000).catch(() => undefined);
    const letters = await dead.collect();
    expect(letters.length, `nothing may be lost: ${poison.requestId} should reach the dead-letter queue at least once (at most twice: ` +
      'the original redelivered after the crash, plus the copy worker-a forwarded; a duplicate is the price of at-least-once, ' +
      `and consumers dedupe by message id, lesson 11). ${await whereMessagesAre(rabbit, topology)} (${WORKER_FILE})`).toBeGreaterThanOrEqual(1);
    expect(letters.length, `${poison.requestId} was dead-lettered ${letters.length} times: at most 2 copies can exist (${WORKER_FILE})`).toBeLessThanOrEqual(2);
    for (const letter of letters) {
      expect(letter.properties.messageId, 'every dead letter should keep the message id').toBe(poison.requestId);
      expect(Number(header(letter, DEAD_LETTER_HEADERS.attempts)), `each copy should be dead-lettered after its 3rd attempt (${WORKER_FILE})`).toBe(3);
    }
  }, 90_000);

  test('a consumer killed after forwarding a failed record and before committing its offset loses nothing (a duplicate is acceptable)', async ({ kafka, procs }) => {
    const delays = [300, 100];
    expectPolicy({ delaysMs: delays });
    const topics = await kafkaTopics(kafka, 1);
    const groupId = kafka.groupId('label-service');
    const producer = await kafka.producer();
    await produceOne(producer, topics.source, record(labelRequest('before')));
    const poison = labelRequest('crash', UNSERVED_POSTCODE);
    const source = await produceOne(producer, topics.source, record(poison));
    const id = escapeRegExp(poison.requestId);
    // The dead consumer stays in the group until a rebalance gives up on it: keep that short.
    const env = {
      ...serviceEnv('kafka'),
      ...groupTimingsEnv({ rebalanceTimeout: 1_000 }),
      SOURCE_TOPIC: topics.source,
      RETRY_TOPIC: topics.retry,
      DEAD_LETTER_TOPIC: topics.deadLetter,
      CONSUMER_GROUP: groupId,
      RETRY_DELAYS_MS: delays.join(','),
    };

    const first = procs.start(SLUG, 'kafka-main.ts', { env: { ...env, CRASH_AFTER_FORWARD: '1' }, name: 'consumer A (kafka-main.ts)' });
    kafka.cleanup(() => first.stop());
    const crash = await within(30_000, first.exited, () => `consumer A should have forwarded the failed record to the retry topic ` +
      `and then crashed (CRASH_AFTER_FORWARD=1 kills it in onForwarded). It is still running; its output:\n${first.output()}`);
    expect(crash.signal, `consumer A should have been killed in onForwarded, after the retry topic acknowledged the copy; it exited with ` +
      `code ${crash.code}. Call options.onForwarded after the produce and before the commit (${CONSUMER_FILE}). Its output:\n${first.output()}`).toBe('SIGKILL');
    const committedAtCrash = (await kafka.committedOffsets(groupId, topics.source)).get(0) ?? -1;
    expect(committedAtCrash, `consumer A was killed after forwarding the failed record at offset ${source.offset} and before committing ` +
      `it, yet ${committedAtCrash} is committed: the offset was committed before the copy was safe. A crash a moment earlier ` +
      `would have lost the record (${CONSUMER_FILE})`).toBeLessThanOrEqual(Number(source.offset));
    expect(await totalRecords(kafka, topics.retry), `the retry topic should hold the copy consumer A forwarded before it died (${CONSUMER_FILE})`).toBe(1);

    const second = procs.start(SLUG, 'kafka-main.ts', { env, name: 'consumer B (kafka-main.ts)' });
    kafka.cleanup(() => second.stop());
    await second.waitForOutput(new RegExp(`delivery ${id} attempt=1/3 from ${escapeRegExp(topics.source)}:0@${source.offset}`),
      `read the failed record again from ${topics.source}:0@${source.offset}: its offset was never committed`, 40_000);
    await waitUntil(async () => ((await totalRecords(kafka, topics.deadLetter)) >= 2 ? null : 'waiting for both copies'), 6_000).catch(() => undefined);
    const letters = await readAll(kafka, topics.deadLetter);
    expect(letters.length, `nothing may be lost: the failed record should reach the dead-letter topic at least once (at most twice: ` +
      'the record read again after the crash, plus the copy consumer A had forwarded; a duplicate is the price of at-least-once, ' +
      `lesson 11 dedupes it) (${CONSUMER_FILE})`).toBeGreaterThanOrEqual(1);
    expect(letters.length, `the failed record was dead-lettered ${letters.length} times: at most 2 copies can exist (${CONSUMER_FILE})`).toBeLessThanOrEqual(2);
    for (const letter of letters) {
      expect([headerText(letter.headers, ORIGIN_HEADERS.topic), headerText(letter.headers, ORIGIN_HEADERS.offset), attemptsHeader(letter)],
        `every copy should name the source record and 3 attempts (${CONSUMER_FILE})`).toEqual([topics.source, source.offset, '3']);
    }
  }, 90_000);

  test('a failing record is retried through the retry topic and, after exactly 3 deliveries with the delays between them, dead-lettered with headers naming its exact source topic, partition, offset, error and attempts', async ({ kafka }) => {
    const delays = [100, 300];
    const policy = { delaysMs: delays };
    expectPolicy(policy);
    const topics = await kafkaTopics(kafka, 3);
    const log = new DeliveryLog();
    const producer = await kafka.producer();
    const orderId = `order-${randomUUID().slice(0, 8)}`;
    // Two good records of the same order first, so the poison record is not at offset 0.
    for (const tag of ['first', 'second']) await produceOne(producer, topics.source, record({ ...labelRequest(tag), orderId }));
    const poison = { ...labelRequest('poison'), orderId };
    const source = await produceOne(producer, topics.source, record(poison, { 'trace-id': 'trace-10' }));
    const { groupId } = await kafkaConsumer(kafka, topics, policy, kafkaHandler(new Map([[poison.requestId, 'reject']]), log));

    await waitForKafkaDeadLetters(kafka, topics, log, [poison.requestId], 3, 10_000);
    const deliveries = log.of(poison.requestId);
    expect(deliveries[0]?.position, kafka.withHandlerErrors(`the first delivery of the failing record should be the record itself, ` +
      `at ${source.topic}:${source.partition}@${source.offset} (${CONSUMER_FILE})`)).toEqual(source);
    expect(deliveries.slice(1).map((delivery) => delivery.position?.topic), `attempts 2 and 3 should be read from the retry topic ` +
      `${topics.retry} (${CONSUMER_FILE})`).toEqual([topics.retry, topics.retry]);
    expect(log.attempts(poison.requestId), 'the handler should see attempts 1, 2 and 3, read from the retry-attempt header of each ' +
      `retry record (${CONSUMER_FILE})`).toEqual([1, 2, 3]);
    expect(gapProblem(log.gaps(poison.requestId), delays, KAFKA_LATE_MS, `${CONSUMER_FILE}: the retry-not-before header`)).toBeNull();
    expect(await totalRecords(kafka, topics.retry), `the retry topic should hold exactly 2 copies (for attempts 2 and 3) (${CONSUMER_FILE})`).toBe(2);

    const [letter, ...more] = await readAll(kafka, topics.deadLetter);
    expect(more.length, `the record should be dead-lettered once (${CONSUMER_FILE})`).toBe(0);
    const headers = (name: string) => headerText(letter!.headers, name);
    expect({
      key: letter!.key?.toString(),
      value: letter!.value?.toString(),
      [ORIGIN_HEADERS.topic]: headers(ORIGIN_HEADERS.topic),
      [ORIGIN_HEADERS.partition]: headers(ORIGIN_HEADERS.partition),
      [ORIGIN_HEADERS.offset]: headers(ORIGIN_HEADERS.offset),
      [DEAD_LETTER_HEADERS.attempts]: headers(DEAD_LETTER_HEADERS.attempts),
      'trace-id': headers('trace-id'),
    }, 'the dead-letter record should keep the key, the value and the headers of the source record, and say where that record ' +
      'is: its topic, partition and offset as the broker wrote it (not the retry record it was last read from; copy the origin ' +
      `headers from the retry record), and after how many attempts it was given up (${CONSUMER_FILE})`).toEqual({
      key: orderId,
      value: body(poison).toString(),
      [ORIGIN_HEADERS.topic]: source.topic,
      [ORIGIN_HEADERS.partition]: String(source.partition),
      [ORIGIN_HEADERS.offset]: source.offset,
      [DEAD_LETTER_HEADERS.attempts]: '3',
      'trace-id': 'trace-10',
    });
    expect(headers(DEAD_LETTER_HEADERS.error), `the dead-letter record should carry the handler's error message in its ` +
      `"${DEAD_LETTER_HEADERS.error}" header (${CONSUMER_FILE})`).toMatch(/the carrier refused/);

    await sleep(2 * Math.max(...delays) + 300);
    expect(log.count(poison.requestId), `after it was dead-lettered, the record was delivered again (${CONSUMER_FILE})`).toBe(3);
    for (const topic of [topics.source, topics.retry]) {
      await waitUntil(async () => {
        const [ends, committed] = await Promise.all([kafka.latestOffsets(topic), kafka.committedOffsets(groupId, topic)]);
        const behind = [...ends].filter(([partition, high]) => high > 0 && committed.get(partition) !== high);
        return behind.length === 0 ? null : `every record of ${topic} is done, so the group's committed offsets should be at the end of ` +
          `each partition; ${behind.map(([partition, high]) => `partition ${partition}: committed ${committed.get(partition) ?? -1}, ` +
          `end ${high}`).join('; ')}. Commit offset + 1 once a record is handled or its copy is safe (${CONSUMER_FILE})`;
      }, 3_000);
    }
  });

  test('when the dead-letter topic refuses a record, its offset is not committed, and it is dead-lettered once the topic accepts it', async ({ kafka }) => {
    // No retries: the first failure goes straight to the dead-letter topic, which refuses every record at first.
    const policy = { delaysMs: [] };
    expectPolicy(policy);
    const topics = await kafkaTopics(kafka, 1, 'deadLetter');
    const log = new DeliveryLog();
    const poison = labelRequest('poison');
    const behind = labelRequest('behind');
    const producer = await kafka.producer();
    const source = await produceOne(producer, topics.source, record(poison));
    await produceOne(producer, topics.source, record(behind));
    const { groupId } = await kafkaConsumer(kafka, topics, policy, kafkaHandler(new Map([[poison.requestId, 'reject']]), log));
    const committed = async () => (await kafka.committedOffsets(groupId, topics.source)).get(0) ?? -1;

    // The consumer tries, the dead-letter topic refuses (MESSAGE_TOO_LARGE), and the record must stay uncommitted.
    await waitUntil(async () => {
      const offset = await committed();
      if (offset > Number(source.offset)) {
        throw new Error(`the dead-letter topic refused the failed record, and the consumer committed its offset anyway (committed: ` +
          `${offset}): the record is in neither topic, lost. Commit only after the dead-letter topic has acknowledged the copy; ` +
          `if producing fails, let that error leave eachMessage, so kafkajs reads the record again (${CONSUMER_FILE})`);
      }
      return log.count(poison.requestId) >= 2 ? null : kafka.withHandlerErrors(`the failed record was delivered ` +
        `${log.count(poison.requestId)} time(s) while the dead-letter topic refused it; it should be read again until it can be ` +
        'dead-lettered. If the consumer stopped after the first try, kafkajs gave up on it for good: it does that when ' +
        'eachMessage throws an error kafkajs marks non-retriable, as the producer\'s MESSAGE_TOO_LARGE is. Throw an error of ' +
        `your own instead (ForwardFailed) (${CONSUMER_FILE})`);
    }, 8_000);
    await sleep(300);
    expect(await committed(), `while the dead-letter topic refused the failed record, its offset (${source.offset}) must not be ` +
      `committed (${CONSUMER_FILE})`).toBeLessThanOrEqual(Number(source.offset));
    expect(await totalRecords(kafka, topics.deadLetter), 'the dead-letter topic refused every record so far').toBe(0);

    await acceptRecordsAgain(kafka, topics.deadLetter);
    await waitUntil(async () => {
      const dead = await totalRecords(kafka, topics.deadLetter);
      const offset = await committed();
      return dead >= 1 && offset === 2 && log.count(behind.requestId) > 0 ? null : kafka.withHandlerErrors(`once the dead-letter ` +
        `topic accepted records again, the failed record should be dead-lettered, its offset committed and the record behind it ` +
        `handled; after 12 s the dead-letter topic holds ${dead}, the committed offset is ${offset} (expected 2) and the record ` +
        `behind was handled ${log.count(behind.requestId)} time(s). A forwarding error rethrown as kafkajs's own non-retriable ` +
        `error (MESSAGE_TOO_LARGE) stops the consumer for good: wrap it in an error of your own (${CONSUMER_FILE})`);
    }, 12_000);
    const [letter] = await readAll(kafka, topics.deadLetter);
    expect(headerText(letter!.headers, ORIGIN_HEADERS.offset), `the dead letter should name the source offset ${source.offset} (${CONSUMER_FILE})`).toBe(source.offset);
    expect(headerText(letter!.headers, DEAD_LETTER_HEADERS.attempts), `with no retries the record is dead-lettered after 1 attempt (${CONSUMER_FILE})`).toBe('1');
  }, 40_000);

  test('a message that always fails is delivered exactly 3 times, each retry after its delay, then dead-lettered with its failure reason and attempt count', async ({ rabbit, unique }) => {
    const delays = [100, 300];
    expectPolicy({ delaysMs: delays });
    const topology = await declaredTopology(rabbit, unique('labels'), delays);
    const log = new DeliveryLog();
    const poison = labelRequest('poison');
    const handle = failingFor(new Map([[poison.requestId, 'reject']]), log);
    await rabbitWorker(rabbit, topology, (request, { attempt, redelivered }) => handle(request, attempt, { redelivered }));
    await sendToWork(rabbit, topology.queue, [{ id: poison.requestId, content: body(poison) }]);

    const dead = new DeadLetters(rabbit, topology.deadLetterQueue);
    await waitForDeadLetters(rabbit, topology, dead, log, [poison.requestId], 3, 5_000);
    expect(log.attempts(poison.requestId), 'the handler should see attempts 1, 2 and 3, read from the retry-attempt header each ' +
      `copy carries, before the message is dead-lettered (${WORKER_FILE})`).toEqual([1, 2, 3]);
    expect(gapProblem(log.gaps(poison.requestId), delays, RABBIT_LATE_MS, WORKER_FILE)).toBeNull();
    const [letter] = dead.of(poison.requestId);
    expectDeadLetter(letter!, body(poison), 3, /the carrier refused/, topology);

    // Nothing loops: no further delivery, nothing left behind in a retry queue or a second dead letter.
    await sleep(2 * Math.max(...delays) + 200);
    await dead.collect();
    expect(log.count(poison.requestId), `after it was dead-lettered, ${poison.requestId} was delivered again (${WORKER_FILE})`).toBe(3);
    expect(dead.of(poison.requestId).length, `${poison.requestId} was dead-lettered more than once (${WORKER_FILE})`).toBe(1);
    for (const queue of [topology.queue, ...topology.retryQueues.map((retry) => retry.name)]) {
      const left = await rabbit.readyMessages(queue);
      expect(left, left === undefined
        ? `the queue "${queue}" does not exist: there should be one retry queue per delay (${TOPOLOGY_FILE})`
        : `"${queue}" should be empty once the message is dead-lettered; it holds ${left} (${WORKER_FILE})`).toBe(0);
    }
  });

  test('a failing key does not hold up other keys: the records behind it on its partition are handled before its first retry', async ({ kafka }) => {
    const delays = [100, 300];
    const policy = { delaysMs: delays };
    expectPolicy(policy);
    const topics = await kafkaTopics(kafka, 1);
    const log = new DeliveryLog();
    const poison = labelRequest('poison');
    const healthy = [labelRequest('healthy-1'), labelRequest('healthy-2'), labelRequest('healthy-3')];
    const producer = await kafka.producer();
    await producer.send({ topic: topics.source, acks: -1, messages: [poison, ...healthy].map((request) => record(request)) });
    const { groupId } = await kafkaConsumer(kafka, topics, policy, kafkaHandler(new Map([[poison.requestId, 'reject']]), log));

    await waitUntil(() => (healthy.every((request) => log.count(request.requestId) > 0) && log.count(poison.requestId) >= 2 ? null :
      kafka.withHandlerErrors(`after 6 s: the failing record was delivered ${log.count(poison.requestId)} time(s), the ${healthy.length} ` +
        `records behind it were handled ${healthy.filter((request) => log.count(request.requestId) > 0).length} time(s) (${CONSUMER_FILE})`)),
    6_000, () => tooMany(log, poison.requestId, 3, CONSUMER_FILE));
    const firstRetry = log.of(poison.requestId)[1]!.at;
    for (const request of healthy) {
      const handled = log.of(request.requestId)[0]!.at;
      expect(handled <= firstRetry, `${request.requestId}, behind the failing record on the same partition, was handled ${handled - firstRetry} ms ` +
        'after the failing record\'s first retry: the partition waited for the failing record. Forward a failed record to the ' +
        `retry topic and commit it at once, so the next record is read right away (${CONSUMER_FILE})`).toBe(true);
      expect(log.count(request.requestId), `${request.requestId} should be handled once (${CONSUMER_FILE})`).toBe(1);
    }
    await waitForKafkaDeadLetters(kafka, topics, log, [poison.requestId], 3, 5_000);
    await waitUntil(async () => {
      const committed = (await kafka.committedOffsets(groupId, topics.source)).get(0) ?? -1;
      return committed === 4 ? null : `the committed offset of the source partition should reach 4 (all 4 records done); it is ${committed} (${CONSUMER_FILE})`;
    }, 3_000);
  });

  test('a handler that rejects asynchronously is retried and dead-lettered exactly like one that throws, on Kafka too', async ({ kafka }) => {
    const delays = [50, 100];
    const policy = { delaysMs: delays };
    expectPolicy(policy);
    const topics = await kafkaTopics(kafka, 2);
    const log = new DeliveryLog();
    const throws = labelRequest('throws');
    const rejects = labelRequest('rejects');
    const producer = await kafka.producer();
    await producer.send({ topic: topics.source, acks: -1, messages: [throws, rejects].map((request) => record(request)) });
    await kafkaConsumer(kafka, topics, policy, kafkaHandler(new Map([[throws.requestId, 'throw'], [rejects.requestId, 'reject']]), log));

    await waitForKafkaDeadLetters(kafka, topics, log, [throws.requestId, rejects.requestId], 3, 10_000);
    for (const [request, how] of [[throws, 'throws synchronously'], [rejects, 'returns a promise that rejects later']] as const) {
      expect(log.attempts(request.requestId), `a handler that ${how} should get 3 deliveries (attempts 1, 2, 3) and then be dead-lettered; ` +
        `put \`await handle(...)\` inside try/catch, so a throw and a rejection both land in the catch (${CONSUMER_FILE})`).toEqual([1, 2, 3]);
    }
    const letters = await readAll(kafka, topics.deadLetter);
    expect(letters.map((letter) => [requestIdOf(letter), attemptsHeader(letter)]).sort(), `each record should be dead-lettered once, ` +
      `after 3 attempts (${CONSUMER_FILE})`).toEqual([[rejects.requestId, '3'], [throws.requestId, '3']].sort());
  });

  test('a malformed message is dead-lettered at once with the reason, without retries', async ({ rabbit, unique }) => {
    const delays = [50, 100];
    const topology = await declaredTopology(rabbit, unique('labels'), delays);
    const log = new DeliveryLog();
    const handle = failingFor(new Map(), log);
    await rabbitWorker(rabbit, topology, (request, { attempt }) => handle(request, attempt, {}));
    const notJson = Buffer.from('<label please>');
    const wrongShape = Buffer.from(JSON.stringify({ requestId: 'r', weightGrams: 'heavy' }));
    const valid = labelRequest('valid');
    await sendToWork(rabbit, topology.queue, [
      { id: 'not-json', content: notJson },
      { id: 'wrong-shape', content: wrongShape },
      { id: valid.requestId, content: body(valid) },
    ]);

    const dead = new DeadLetters(rabbit, topology.deadLetterQueue);
    await waitUntil(async () => {
      await dead.collect();
      const missing = ['not-json', 'wrong-shape'].filter((id) => dead.of(id).length === 0);
      return missing.length === 0 && log.count(valid.requestId) > 0 ? null :
        `after 5 s, the dead-letter queue holds ${dead.messages.length} message(s) and the valid request was handled ` +
        `${log.count(valid.requestId)} time(s). A body that cannot be parsed will never parse: send it to the dead-letter queue ` +
        `with the parse error as its reason, and go on with the next message (${WORKER_FILE}). ${await whereMessagesAre(rabbit, topology)}`;
    }, 5_000);
    expectDeadLetter(dead.of('not-json')[0]!, notJson, 1, /\S/, topology);
    expectDeadLetter(dead.of('wrong-shape')[0]!, wrongShape, 1, /weightGrams|postcode|orderId/, topology);
    await sleep(300);
    await dead.collect();
    expect(dead.messages.length, `each malformed message should be dead-lettered once, at its first delivery (${WORKER_FILE})`).toBe(2);
    expect(log.entries.map((entry) => entry.id), `only the valid request should reach the handler (${WORKER_FILE})`).toEqual([valid.requestId]);
  });

  test('each retry waits its own delay even while a message with a longer delay is waiting (one retry queue per delay)', async ({ rabbit, unique }) => {
    const delays = [100, 3_000];
    expectPolicy({ delaysMs: delays });
    const topology = await declaredTopology(rabbit, unique('labels'), delays);
    const log = new DeliveryLog();
    const slow = labelRequest('long-wait');
    const quick = labelRequest('short-wait');
    // `quick` is published while `slow` fails its second attempt, so `slow` then waits 3 s while `quick` should wait 100 ms.
    const handle = failingFor(new Map([[slow.requestId, 'reject'], [quick.requestId, 'reject']]), log, async (request, attempt) => {
      if (request.requestId === slow.requestId && attempt === 2) await sendToWork(rabbit, topology.queue, [{ id: quick.requestId, content: body(quick) }]);
    });
    await rabbitWorker(rabbit, topology, (request, { attempt }) => handle(request, attempt, {}), 1);
    await sendToWork(rabbit, topology.queue, [{ id: slow.requestId, content: body(slow) }]);

    await waitUntil(() => (log.count(quick.requestId) >= 2 ? null :
      `${quick.requestId} failed once and was not delivered again within 2.5 s, although its retry delay is ${delays[0]} ms ` +
      `(deliveries: ${log.count(quick.requestId)}) (${WORKER_FILE})`), 2_500,
    () => tooMany(log, quick.requestId, 3, WORKER_FILE) ?? tooMany(log, slow.requestId, 3, WORKER_FILE));
    const [gap] = log.gaps(quick.requestId);
    expect(gap, `${quick.requestId} waited ${gap} ms for its first retry, whose delay is ${delays[0]} ms, because it was queued behind a ` +
      `message waiting ${delays[1]} ms. RabbitMQ expires a message only when it reaches the head of its queue: in one retry queue ` +
      'with a per-message expiration, a short delay waits for every longer one ahead of it. Use one retry queue per delay, with ' +
      `the delay as the queue's x-message-ttl (${TOPOLOGY_FILE}, ${WORKER_FILE})`).toBeLessThanOrEqual(delays[0]! + RABBIT_LATE_MS);
    expect(gap, `${quick.requestId} was retried ${gap} ms after its failure; its delay is ${delays[0]} ms (${WORKER_FILE})`)
      .toBeGreaterThanOrEqual(delays[0]! - EARLY_MS);
  });

  test('a healthy message published after a poison one is handled while the poison one waits, before it is dead-lettered', async ({ rabbit, unique }) => {
    const delays = [100, 300];
    expectPolicy({ delaysMs: delays });
    const topology = await declaredTopology(rabbit, unique('labels'), delays);
    const log = new DeliveryLog();
    const poison = labelRequest('poison');
    const healthy = labelRequest('healthy');
    // The healthy message is published while the poison one's first delivery is failing.
    const handle = failingFor(new Map([[poison.requestId, 'reject']]), log, async (request, attempt) => {
      if (request.requestId === poison.requestId && attempt === 1) await sendToWork(rabbit, topology.queue, [{ id: healthy.requestId, content: body(healthy) }]);
    });
    // One message at a time: what the worker does with a failure decides what happens to the queue behind it.
    await rabbitWorker(rabbit, topology, (request, { attempt }) => handle(request, attempt, {}), 1);
    await sendToWork(rabbit, topology.queue, [{ id: poison.requestId, content: body(poison) }]);

    await waitUntil(() => (log.count(healthy.requestId) > 0 ? null :
      `the healthy message ${healthy.requestId} was never handled while ${poison.requestId} kept failing (delivered ` +
      `${log.count(poison.requestId)} times). A failed message must leave the work queue at once (forwarded to a retry queue, ` +
      `then acked), not be requeued to the head of the queue or retried in place (${WORKER_FILE})`), 5_000,
    () => tooMany(log, poison.requestId, 3, WORKER_FILE));
    const handledAt = log.of(healthy.requestId)[0]!.at;
    const lastPoison = log.of(poison.requestId).at(-1)!;
    expect(lastPoison.attempt < 3 || lastPoison.at > handledAt, `the healthy message ${healthy.requestId} was handled only after ` +
      `${poison.requestId} had used up all its ${lastPoison.attempt} attempts: the worker held the queue while it retried. Retry ` +
      `through the retry queues, so the worker is free for the next message while a failed one waits (${WORKER_FILE})`).toBe(true);

    const dead = new DeadLetters(rabbit, topology.deadLetterQueue);
    await waitForDeadLetters(rabbit, topology, dead, log, [poison.requestId], 3, 5_000);
    expect(log.count(healthy.requestId), `the healthy message should be handled exactly once (${WORKER_FILE})`).toBe(1);
    expect(dead.of(healthy.requestId), `the healthy message must not be dead-lettered (${WORKER_FILE})`).toEqual([]);
  });

  test('the topology declares a work exchange and queue, one classic retry queue per delay whose TTL and dead-letter exchange lead back to the work queue, and a dead-letter queue', async ({ rabbit, unique }) => {
    const delays = [150, 400];
    const topology = await declaredTopology(rabbit, unique('labels'), delays);

    expect(await exchangeExists(rabbit, topology.exchange), `the exchange "${topology.exchange}" does not exist. The retry queues name it as ` +
      'their dead-letter exchange, and RabbitMQ does not check that one exists: every retry that expires into a missing exchange ' +
      `is dropped without a word. Declare it with channel.assertExchange (${TOPOLOGY_FILE})`).toBe(true);
    const exchange = await rabbit.exchangeMismatch(topology.exchange, 'direct', { durable: true });
    expect(exchange, `the exchange "${topology.exchange}" should be a durable direct exchange; redeclaring it so failed: ${exchange} (${TOPOLOGY_FILE})`).toBeUndefined();
    for (const queue of [topology.queue, topology.deadLetterQueue]) {
      const problem = await rabbit.queueMismatch(queue, { durable: true, arguments: CLASSIC_QUEUE });
      expect(problem, `"${queue}" should be a durable queue with x-queue-type: classic and no other arguments; redeclaring it so ` +
        `failed: ${problem} (${TOPOLOGY_FILE})`).toBeUndefined();
    }
    for (const { name, delayMs } of topology.retryQueues) {
      expect(await rabbit.queueExists(name), `there should be one retry queue per delay: "${name}" for ${delayMs} ms is missing. A single ` +
        'retry queue with a per-message expiration does not work: RabbitMQ expires messages only at the head of a queue, so a ' +
        `short delay waits behind a long one (${TOPOLOGY_FILE})`).toBe(true);
      const expected = {
        ...CLASSIC_QUEUE,
        'x-message-ttl': delayMs,
        'x-dead-letter-exchange': topology.exchange,
        'x-dead-letter-routing-key': topology.routingKey,
      };
      const problem = await rabbit.queueMismatch(name, { durable: true, arguments: expected });
      expect(problem, `"${name}" should be durable with the arguments ${JSON.stringify(expected)}; redeclaring it so failed: ${problem} (${TOPOLOGY_FILE})`).toBeUndefined();
    }

    // From the broker's side: a message left in a retry queue comes back to the work queue after that queue's delay.
    const arrivals = new Map<string, number>();
    const watcher = await rabbit.channel(await rabbit.connect());
    await watcher.consume(topology.queue, (message) => void (message && arrivals.set(String(message.properties.messageId), Date.now())), { noAck: true });
    const sent = new Map<string, { at: number; queue: string; delayMs: number }>();
    const probes = await rabbit.confirmChannel();
    for (const { name, delayMs } of topology.retryQueues) {
      const id = `probe-${delayMs}`;
      sent.set(id, { at: Date.now(), queue: name, delayMs });
      probes.sendToQueue(name, Buffer.from('{}'), { persistent: true, messageId: id });
    }
    probes.publish(topology.exchange, topology.routingKey, Buffer.from('{}'), { persistent: true, messageId: 'probe-exchange' });
    await probes.waitForConfirms();
    await waitUntil(async () => {
      const late = [...sent.keys(), 'probe-exchange'].filter((id) => !arrivals.has(id));
      if (late.length === 0) return null;
      if (late.includes('probe-exchange')) {
        return `a message published to the exchange "${topology.exchange}" with routing key "${topology.routingKey}" never reached the work ` +
          `queue: bind the work queue to the exchange with that key (${TOPOLOGY_FILE})`;
      }
      const [id] = late;
      const probe = sent.get(id!)!;
      const stillThere = await rabbit.readyMessages(probe.queue);
      return stillThere
        ? `a message put in "${probe.queue}" is still there after ${Date.now() - probe.at} ms: give the queue an x-message-ttl of ` +
          `${probe.delayMs} (a queue-level TTL, not a per-message expiration) (${TOPOLOGY_FILE})`
        : `a message put in "${probe.queue}" expired but never reached the work queue "${topology.queue}": it was dead-lettered to an ` +
          'exchange that does not exist or does not route it there. Set x-dead-letter-exchange to the work exchange and ' +
          `x-dead-letter-routing-key to the work queue's binding key (${TOPOLOGY_FILE}). ${await whereMessagesAre(rabbit, topology)}`;
    }, Math.max(...delays) + RABBIT_LATE_MS + 1_000);
    for (const [id, probe] of sent) {
      const waited = arrivals.get(id)! - probe.at;
      expect(waited, `a message put in "${probe.queue}" came back after ${waited} ms; its queue's delay is ${probe.delayMs} ms (${TOPOLOGY_FILE})`)
        .toBeGreaterThanOrEqual(probe.delayMs - EARLY_MS);
      expect(waited, `a message put in "${probe.queue}" came back after ${waited} ms; its queue's delay is ${probe.delayMs} ms (${TOPOLOGY_FILE})`)
        .toBeLessThanOrEqual(probe.delayMs + RABBIT_LATE_MS);
    }
  });

  test('a handler that rejects asynchronously is retried and dead-lettered exactly like one that throws', async ({ rabbit, unique }) => {
    const delays = [50, 100];
    expectPolicy({ delaysMs: delays });
    const topology = await declaredTopology(rabbit, unique('labels'), delays);
    const log = new DeliveryLog();
    const throws = labelRequest('throws');
    const rejects = labelRequest('rejects');
    const handle = failingFor(new Map([[throws.requestId, 'throw'], [rejects.requestId, 'reject']]), log);
    await rabbitWorker(rabbit, topology, (request, { attempt }) => handle(request, attempt, {}));
    await sendToWork(rabbit, topology.queue, [throws, rejects].map((request) => ({ id: request.requestId, content: body(request) })));

    const dead = new DeadLetters(rabbit, topology.deadLetterQueue);
    await waitForDeadLetters(rabbit, topology, dead, log, [throws.requestId, rejects.requestId], 3, 5_000);
    for (const [request, how] of [[throws, 'throws synchronously'], [rejects, 'returns a promise that rejects later']] as const) {
      expect(log.attempts(request.requestId), `a handler that ${how} should get 3 deliveries (attempts 1, 2, 3) and then be dead-lettered; ` +
        `put \`await handle(...)\` inside try/catch, so a throw and a rejection both land in the catch (${WORKER_FILE})`).toEqual([1, 2, 3]);
      expectDeadLetter(dead.of(request.requestId)[0]!, body(request), 3, /the carrier refused/, topology);
    }
  });

  test('the attempt number comes from the retry-attempt header, never from x-death, so RabbitMQ 3.x and 4.x count alike', async ({ rabbit, unique }) => {
    const delays = [50, 100];
    expectPolicy({ delaysMs: delays });
    const topology = await declaredTopology(rabbit, unique('labels'), delays);
    const log = new DeliveryLog();
    // On its third attempt, as RabbitMQ 4 delivers it: a 4.x broker ignores the x-death a client republishes,
    // so x-death only remembers the last expiry while the lesson's own header has counted every attempt.
    const third = labelRequest('third-attempt');
    // From an earlier life (an operator moved it back from another queue): x-death says 5, no attempt yet.
    const fresh = labelRequest('fresh');
    const handle = failingFor(new Map([[third.requestId, 'reject'], [fresh.requestId, 'reject']]), log);
    await rabbitWorker(rabbit, topology, (request, { attempt }) => handle(request, attempt, {}));
    const death = (queue: string, count: number) => [{
      count, reason: 'expired' as const, queue, exchange: '', 'routing-keys': [queue],
      time: { '!': 'timestamp' as const, value: Math.floor(Date.now() / 1_000) },
    }];
    await sendToWork(rabbit, topology.queue, [
      { id: third.requestId, content: body(third), headers: { [RETRY_HEADERS.attempt]: 3, 'x-death': death(topology.retryQueues[1]!.name, 1) } },
      { id: fresh.requestId, content: body(fresh), headers: { 'x-death': death(topology.retryQueues[0]!.name, 5) } },
    ]);

    const dead = new DeadLetters(rabbit, topology.deadLetterQueue);
    await waitForDeadLetters(rabbit, topology, dead, log, [third.requestId, fresh.requestId], 3, 5_000);
    const xDeath = 'Count attempts only in the retry-attempt header (absent = 1), raised by one on every copy you forward. ' +
      'RabbitMQ writes x-death itself, and from 4.0 on it ignores an x-death header that a client republishes: a count ' +
      `read from there starts over at every retry, and on such a broker the retries never end (${WORKER_FILE})`;
    expect(log.attempts(third.requestId), `a message arriving with retry-attempt 3 (the last of 3) and an x-death that records one ` +
      `expiry is on its last attempt: its failure should dead-letter it at once. ${xDeath}`).toEqual([3]);
    expect(log.attempts(fresh.requestId), `a message without a retry-attempt header is on its first attempt, whatever its x-death ` +
      `history says (count 5 here): it should get attempts 1, 2 and 3. ${xDeath}`).toEqual([1, 2, 3]);
    expect(Number(header(dead.of(third.requestId)[0]!, DEAD_LETTER_HEADERS.attempts)), 'the dead letter of the third attempt should say 3').toBe(3);
  });

  test('the retry policy schedules each delay in turn, then dead-letters; with no delays the first failure is final', () => {
    const policy = { delaysMs: [100, 300] };
    expect(afterFailure(policy, 1), `afterFailure({ delaysMs: [100, 300] }, 1): the first delivery failed, so attempt 2 comes ` +
      `after the first delay (${POLICY_FILE})`).toEqual({ action: 'retry', attempt: 2, delayMs: 100 });
    expect(afterFailure(policy, 2), `afterFailure({ delaysMs: [100, 300] }, 2): attempt 3 comes after the second delay (${POLICY_FILE})`)
      .toEqual({ action: 'retry', attempt: 3, delayMs: 300 });
    expect(afterFailure(policy, 3), `afterFailure({ delaysMs: [100, 300] }, 3): two delays mean three deliveries; the third ` +
      `failure is final (${POLICY_FILE})`).toEqual({ action: 'dead-letter' });
    expect(afterFailure(policy, 9), `afterFailure({ delaysMs: [100, 300] }, 9): an attempt past the last delay must still ` +
      `dead-letter, never wrap around or read past the list (${POLICY_FILE})`).toEqual({ action: 'dead-letter' });
    expect(afterFailure({ delaysMs: [] }, 1), `afterFailure({ delaysMs: [] }, 1): no delays means no retries (${POLICY_FILE})`)
      .toEqual({ action: 'dead-letter' });
    expect(afterFailure({ delaysMs: [0, 0] }, 2), `afterFailure({ delaysMs: [0, 0] }, 2): a delay of 0 is still a retry (${POLICY_FILE})`)
      .toEqual({ action: 'retry', attempt: 3, delayMs: 0 });
  });
});
