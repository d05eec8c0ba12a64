import { gradedFolder } from './support/lesson.ts';
import { randomUUID } from 'node:crypto';
import { describe, it, vi } from './support/fixtures.ts';
import type { Message } from 'kafkajs';
import { encodeOrderEvent } from '@lesson/08-kafka-consumer-groups/codec.ts';
import { EVENT_HEADERS, type OrderEvent } from '@lesson/08-kafka-consumer-groups/events.ts';
import { consumerLag, type PartitionLag } from '@lesson/08-kafka-consumer-groups/lag.ts';
import { nextOffset, startOrderWorker, type MessagePosition, type OrderWorker } from '@lesson/08-kafka-consumer-groups/order-worker.ts';
import { planWorkerCount } from '@lesson/08-kafka-consumer-groups/scaling.ts';
import { CHECK_GROUP_TIMINGS, groupTimingsEnv, produce, type KafkaTestKit } from './support/kafka.ts';
import { serviceEnv } from './support/services.ts';
import { eventually, within } from './support/polling.ts';

const SLUG = '08-kafka-consumer-groups';
const WHERE = gradedFolder(SLUG);
// The requirements run side by side (each on its own topic and group): most of their time is
// spent waiting for the broker, not computing.

function orderMessage(partition?: number): Message & { orderId: string } {
  const orderId = `order-${randomUUID()}`;
  const event: OrderEvent = {
    type: 'order.placed',
    eventId: randomUUID(),
    orderId,
    customerId: 'customer-8',
    lines: [{ sku: 'SKU-KETTLE', quantity: 1 }],
    placedAt: new Date().toISOString(),
  };
  return { ...encodeOrderEvent(event, 'check-08'), partition, orderId };
}

/** `perPartition` messages on each of `partitions` partitions, placed there explicitly. */
function spreadOver(partitions: number, perPartition: number): Message[] {
  return Array.from({ length: partitions * perPartition }, (_, i) => orderMessage(i % partitions));
}

interface Processed extends MessagePosition {
  worker: string;
}

async function startWorker(kafka: KafkaTestKit, name: string, topic: string, groupId: string, log: Processed[], handle?: (position: MessagePosition) => Promise<void>): Promise<OrderWorker> {
  const worker = await startOrderWorker({
    kafka: kafka.client(name),
    topic,
    groupId,
    timings: { ...CHECK_GROUP_TIMINGS },
    handle: async (_event, position) => {
      log.push({ ...position, worker: name });
      await handle?.(position);
    },
  });
  kafka.cleanup(() => worker.stop());
  return worker;
}

/** A promise the test resolves when it chooses: holds a handler in the middle of its work. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/** How many different messages were processed (a message handled twice counts once). */
function distinct(log: Processed[]): number {
  return new Set(log.map((p) => `${p.partition}:${p.offset}`)).size;
}

function processedOffsets(output: string): number[] {
  return [...output.matchAll(/^processed \d+:(\d+) /gm)].map((match) => Number(match[1]));
}

describe.concurrent('08 kafka-consumer-groups', () => {
  it('partitions are spread over the group\'s members and move to the survivor when a member leaves', async ({ kafka, expect }) => {
    const topic = await kafka.createTopic('orders', 4);
    const groupId = kafka.groupId('fulfilment');
    const log: Processed[] = [];
    const workerA = await startWorker(kafka, 'worker-a', topic, groupId, log);
    await startWorker(kafka, 'worker-b', topic, groupId, log);

    let owned = new Map<string, number[]>();
    await vi.waitFor(async () => {
      const { state, members } = await kafka.groupMembers(groupId, topic);
      owned = new Map(members.map((m) => [m.clientId, m.partitions]));
      expect({ state, owned: Object.fromEntries(owned) }, 'two workers started with the same group id should split the 4 ' +
        `partitions 2 and 2 (${WHERE}/order-worker.ts: one consumer per worker, subscribed to the topic)`).toEqual({
        state: 'Stable',
        owned: { 'worker-a': expect.any(Array), 'worker-b': expect.any(Array) },
      });
      expect([...owned.values()].map((p) => p.length)).toEqual([2, 2]);
    }, { timeout: 10_000, interval: 100 });

    const producer = await kafka.producer();
    await produce(producer, topic, spreadOver(4, 2));
    await vi.waitFor(() => expect(distinct(log), kafka.withHandlerErrors(`the two workers processed ${distinct(log)} of 8 messages`)).toBe(8),
      { timeout: 8_000, interval: 50 });
    for (const [worker, partitions] of owned) {
      const touched = [...new Set(log.filter((p) => p.worker === worker).map((p) => p.partition))].sort();
      expect(touched, `${worker} owns partitions ${partitions.join(' and ')} and should process exactly those`).toEqual(partitions);
    }

    await workerA.stop();
    await vi.waitFor(async () => {
      const { state, members } = await kafka.groupMembers(groupId, topic);
      expect({ state, members: members.map((m) => [m.clientId, m.partitions]) }, 'after worker-a stopped, its partitions ' +
        'should move to worker-b, which then owns all 4. stop() must disconnect the consumer so it leaves the group ' +
        `at once (${WHERE}/order-worker.ts)`).toEqual({ state: 'Stable', members: [['worker-b', [0, 1, 2, 3]]] });
    }, { timeout: 10_000, interval: 100 });

    log.length = 0;
    await produce(producer, topic, spreadOver(4, 1));
    await vi.waitFor(() => {
      const handled = [...new Set(log.map((p) => `${p.worker}:${p.partition}`))].sort();
      expect(handled, kafka.withHandlerErrors('worker-b should now process the new message on every partition, the two it took over included'))
        .toEqual(['worker-b:0', 'worker-b:1', 'worker-b:2', 'worker-b:3']);
    }, { timeout: 8_000, interval: 50 });
  });

  it('each message\'s offset + 1 is committed after it is processed, never before', async ({ kafka, expect }) => {
    expect(nextOffset('41'), `the offset to commit after processing offset 41 is "42" (${WHERE}/order-worker.ts nextOffset)`).toBe('42');
    expect(nextOffset('9007199254740993'), 'offsets are 64-bit: beyond 2^53 a JavaScript number cannot hold them exactly, ' +
      `so add one with BigInt (${WHERE}/order-worker.ts nextOffset)`).toBe('9007199254740994');

    const topic = await kafka.createTopic('orders', 1);
    const groupId = kafka.groupId('fulfilment');
    const producer = await kafka.producer();
    await produce(producer, topic, spreadOver(1, 5));

    const log: Processed[] = [];
    const held = gate();
    await startWorker(kafka, 'worker', topic, groupId, log, async ({ offset }) => {
      if (offset === '2') await held.opened;
    });
    kafka.cleanup(async () => held.open());

    await vi.waitFor(() => expect(log.map((p) => p.offset), kafka.withHandlerErrors('the worker should process offsets 0, 1, 2 in order')).toEqual(['0', '1', '2']),
      { timeout: 8_000, interval: 25 });
    await vi.waitFor(async () => {
      const committed = (await kafka.committedOffsets(groupId, topic)).get(0) ?? -1;
      expect(committed, kafka.withHandlerErrors(whileProcessingTwo(committed))).toBe(2);
    }, { timeout: 3_000, interval: 50 });

    held.open();
    await vi.waitFor(async () => {
      const committed = (await kafka.committedOffsets(groupId, topic)).get(0) ?? -1;
      expect(committed, `after processing offsets 0 to 4 the committed offset should be 5, the next offset to read; it is ${committed}. ` +
        `Commit message.offset + 1, not message.offset (${WHERE}/order-worker.ts)`).toBe(5);
    }, { timeout: 5_000, interval: 50 });
  });

  it('a worker killed after processing a message but before committing it: the next member processes it again and skips nothing', async ({ kafka, expect, procs }) => {
    const topic = await kafka.createTopic('orders', 1);
    const groupId = kafka.groupId('fulfilment');
    const producer = await kafka.producer();
    await produce(producer, topic, spreadOver(1, 8));
    // When worker B joins, the coordinator waits for the dead worker A to rejoin for up to the
    // group's rebalance timeout before dropping it: keep it short here, both workers are alone.
    const env = { ...serviceEnv('kafka'), ...groupTimingsEnv({ rebalanceTimeout: 1_000 }), ORDERS_TOPIC: topic, WORKER_GROUP: groupId };

    const first = procs.start(SLUG, 'worker.ts', { env: { ...env, CRASH_AFTER_PROCESSING: '4' }, name: 'worker A' });
    kafka.cleanup(() => first.stop());
    const crash = await within(10_000, first.exited, () => `worker A should have processed 4 messages and crashed. Its output:\n${first.output()}`);
    expect(crash.signal, `worker A should have crashed after processing its 4th message (the crash switch in ${WHERE}/worker.ts). ` +
      `It exited with code ${crash.code} instead. Its output:\n${first.output()}`).toBe('SIGKILL');
    expect(processedOffsets(first.output()), `worker A should process offsets 0 to 3 before its crash. Its output:\n${first.output()}`)
      .toEqual([0, 1, 2, 3]);

    const committed = (await kafka.committedOffsets(groupId, topic)).get(0) ?? -1;
    expect(committed, afterCrash(committed)).toBe(3);

    const second = procs.start(SLUG, 'worker.ts', { env, name: 'worker B' });
    kafka.cleanup(() => second.stop());
    await second.waitForOutput(/^processed 0:7 /m, 'processed the rest of the partition (up to offset 7)', 12_000);
    const redone = processedOffsets(second.output());
    expect(redone[0], `worker B started at offset ${redone[0]}. Offset 3 was processed by worker A, which crashed before ` +
      'committing it, so the next member must process it again: at-least-once means a duplicate after a crash, never ' +
      `a loss. If 3 was skipped, the worker committed before its work was done (${WHERE}/order-worker.ts).`).toBe(3);
    expect(redone, 'worker B should continue with every message after it, none skipped').toEqual([3, 4, 5, 6, 7]);
  });

  it('consumer lag per partition counts from the committed offset (0 included), or from the earliest retained offset when nothing is committed or retention has passed the commit', async ({ kafka, expect }) => {
    const topic = await kafka.createTopic('orders', 6);
    const groupId = kafka.groupId('fulfilment');
    const producer = await kafka.producer();
    const counts = [6, 4, 0, 3, 5, 6];
    await produce(producer, topic, counts.flatMap((count, partition) => Array.from({ length: count }, () => orderMessage(partition))));
    const admin = await kafka.adminFor(topic);
    // Partition 4: the group committed offset 0 (it was reset to the start and has processed nothing
    // since). Partition 5: it committed 1, then retention (here an explicit delete) removed offsets 0 to 3.
    await commitAsGroupMember(kafka, groupId, topic, [{ partition: 0, offset: '2' }, { partition: 1, offset: '4' }, { partition: 4, offset: '0' }, { partition: 5, offset: '1' }]);
    // Retention (here: explicit deletes) has removed offset 0 of partition 3 and offsets 0 to 3 of
    // partition 5. (kafkajs finds the partition leaders from metadata it has already loaded, so load it first.)
    await admin.fetchTopicMetadata({ topics: [topic] });
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 3, offset: '1' }] });
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 5, offset: '4' }] });

    const lags = await consumerLag(admin, groupId, topic);
    const expected = [
      { partition: 0, committed: 2, earliest: 0, latest: 6, lag: 4 },
      { partition: 1, committed: 4, earliest: 0, latest: 4, lag: 0 },
      { partition: 2, committed: null, earliest: 0, latest: 0, lag: 0 },
      { partition: 3, committed: null, earliest: 1, latest: 3, lag: 2 },
      { partition: 4, committed: 0, earliest: 0, latest: 5, lag: 5 },
      { partition: 5, committed: 1, earliest: 4, latest: 6, lag: 2 },
    ];
    const why: Record<number, string> = {
      0: 'latest 6 minus committed 2',
      1: 'everything up to latest 4 is committed',
      2: 'an empty partition with nothing committed',
      3: 'nothing committed: the group will start at the earliest retained offset, 1',
      4: 'committed offset 0 is a commit (the group resumes at 0), not "nothing committed": fetchOffsets says -1 for that',
      5: 'committed 1 is older than the earliest retained offset 4: the group resumes at 4, so only 4 and 5 are left',
    };
    const differences = lagDifferences(lags, expected, why);
    expect(differences, 'consumerLag should list every partition in order with its committed offset (null only when ' +
      'fetchOffsets says -1), earliest and latest offsets (fetchTopicOffsets low and high) and the lag: latest minus the ' +
      `offset the group would resume from. These differ (${WHERE}/lag.ts):\n${differences.join('\n')}`).toEqual([]);
  });

  it('a handler that throws or rejects is retried a bounded number of times, then reported once and committed past, and later messages are processed', async ({ kafka, expect }) => {
    const topic = await kafka.createTopic('orders', 1);
    const groupId = kafka.groupId('fulfilment');
    const producer = await kafka.producer();
    // Offset 0 fails once, 1 always throws, 2 always rejects, 3 is fine.
    await produce(producer, topic, spreadOver(1, 4));

    const attempts = new Map<string, number>();
    const handled: string[] = [];
    const reported: Array<{ offset: string; error: unknown; attempts: number }> = [];
    const worker = await startOrderWorker({
      kafka: kafka.client('worker'),
      topic,
      groupId,
      timings: { ...CHECK_GROUP_TIMINGS },
      maxAttempts: 3,
      handle: (_event, { offset }) => {
        const attempt = (attempts.get(offset) ?? 0) + 1;
        attempts.set(offset, attempt);
        if (offset === '0' && attempt === 1) return Promise.reject(new Error('the warehouse API timed out (once)'));
        if (offset === '1') throw new Error('no such warehouse for this order');
        if (offset === '2') return new Promise<void>((_, reject) => setTimeout(() => reject(new Error('the label printer refused the job')), 5));
        handled.push(offset);
        return undefined;
      },
      onHandlerFailed: (error, _event, { offset }, tries) => void reported.push({ offset, error, attempts: tries }),
    });
    kafka.cleanup(() => worker.stop());

    await vi.waitFor(() => {
      expect(handled, kafka.withHandlerErrors(`the message after two whose handler always fails was never processed (attempts so far ` +
        `per offset: ${JSON.stringify(Object.fromEntries(attempts))}). An error that escapes eachMessage makes kafkajs start ` +
        'over on the same message, again and again, and the partition is stuck behind it: catch what handle() throws or ' +
        `rejects with, retry up to maxAttempts times, then report it with onHandlerFailed and go on (${WHERE}/order-worker.ts)`)).toContain('3');
    }, { timeout: 10_000, interval: 50 });

    expect(handled[0], `the handler failed once for offset 0 and would have succeeded on a second try, but offset 0 was never ` +
      `processed (attempts: ${attempts.get('0') ?? 0}): retry before giving up (${WHERE}/order-worker.ts)`).toBe('0');
    for (const [offset, how] of [['1', 'throws'], ['2', 'rejects']] as const) {
      const tries = attempts.get(offset) ?? 0;
      expect(tries, `a handler that always ${how} was called ${tries} times for offset ${offset} with maxAttempts: 3. Try it exactly ` +
        `maxAttempts times: fewer gives up on a passing problem, more is a loop (${WHERE}/order-worker.ts)`).toBe(3);
      const reports = reported.filter((r) => r.offset === offset);
      expect(reports.length, `a handler that always ${how} should be reported to onHandlerFailed once, after its last attempt; offset ` +
        `${offset} was reported ${reports.length} times (${WHERE}/order-worker.ts)`).toBe(1);
      expect(reports[0]!.attempts, `onHandlerFailed should be told how many attempts were made (${WHERE}/order-worker.ts)`).toBe(3);
    }
    await vi.waitFor(async () => {
      const committed = (await kafka.committedOffsets(groupId, topic)).get(0) ?? -1;
      expect(committed, `after the last message the committed offset should be 4: an event given up and reported is done with, ` +
        `and committed like the others, or every restart runs into it again; it is ${committed} (${WHERE}/order-worker.ts)`).toBe(4);
    }, { timeout: 5_000, interval: 50 });
  });

  it('a malformed message is reported with its position, never handed to the handler, and committed past', async ({ kafka, expect }) => {
    const topic = await kafka.createTopic('orders', 1);
    const groupId = kafka.groupId('fulfilment');
    const producer = await kafka.producer();
    const [before, after] = [orderMessage(0), orderMessage(0)];
    // Offset 1: a version this worker does not read; offset 2: a body that is not JSON.
    const newer = { ...orderMessage(0), headers: { ...orderMessage(0).headers, [EVENT_HEADERS.version]: '99' } };
    const garbled = { ...orderMessage(0), value: '{ "orderId": ' };
    await produce(producer, topic, [before, newer, garbled, after]);

    const handled: string[] = [];
    const reported: string[] = [];
    const worker = await startOrderWorker({
      kafka: kafka.client('worker'),
      topic,
      groupId,
      timings: { ...CHECK_GROUP_TIMINGS },
      maxAttempts: 2,
      handle: async (event, { offset }) => void handled.push(`${offset}:${event.orderId}`),
      onMalformed: (_error, { offset }) => void reported.push(offset),
      onHandlerFailed: () => {},
    });
    kafka.cleanup(() => worker.stop());

    await vi.waitFor(() => {
      expect(handled, kafka.withHandlerErrors(`the order after two malformed messages (offsets 1 and 2) was never processed. ` +
        'decodeOrderEvent throws a MalformedEventError for them, and no retry can fix it: an error that escapes ' +
        'eachMessage makes kafkajs read the same message again, for ever, and the partition is stuck behind it. ' +
        `Report it to options.onMalformed and go on (${WHERE}/order-worker.ts)`)).toContain(`3:${after.orderId}`);
    }, { timeout: 10_000, interval: 50 });
    // At-least-once: a redelivery after a rebalance may repeat a message, which is fine.
    expect([...new Set(handled)], `only the two well-formed orders should reach the handler (${WHERE}/order-worker.ts)`)
      .toEqual([`0:${before.orderId}`, `3:${after.orderId}`]);
    expect([...new Set(reported)], `the malformed messages at offsets 1 and 2 should each be reported to onMalformed, with their ` +
      `position, so someone can look at them; onMalformed heard of ${JSON.stringify(reported)} (${WHERE}/order-worker.ts)`).toEqual(['1', '2']);
    await vi.waitFor(async () => {
      const committed = (await kafka.committedOffsets(groupId, topic)).get(0) ?? -1;
      expect(committed, `after the last message the committed offset should be 4, malformed messages included, or every ` +
        `restart reads them again; it is ${committed} (${WHERE}/order-worker.ts)`).toBe(4);
    }, { timeout: 5_000, interval: 50 });
  });

  it('the autoscaler plans no more workers than partitions, because extra members sit idle', async ({ kafka, expect }) => {
    const topic = await kafka.createTopic('orders', 2);
    const groupId = kafka.groupId('fulfilment');
    const log: Processed[] = [];
    for (const name of ['worker-1', 'worker-2', 'worker-3']) await startWorker(kafka, name, topic, groupId, log);
    let idle = '';
    await vi.waitFor(async () => {
      const { state, members } = await kafka.groupMembers(groupId, topic);
      const owned = members.map((m) => `${m.clientId}: [${m.partitions.join(', ')}]`).join('; ') || 'none';
      expect({ state, members: members.length }, kafka.withHandlerErrors('three workers started with one group id should all be ' +
        `members of a stable group (members: ${owned}) (${WHERE}/order-worker.ts)`)).toEqual({ state: 'Stable', members: 3 });
      const idleMembers = members.filter((m) => m.partitions.length === 0);
      expect(idleMembers.length, `with 2 partitions and 3 members exactly one member owns nothing (members: ${owned})`).toBe(1);
      idle = idleMembers[0]!.clientId;
    }, { timeout: 10_000, interval: 100 });
    const producer = await kafka.producer();
    await produce(producer, topic, spreadOver(2, 5));
    await vi.waitFor(() => expect(distinct(log), kafka.withHandlerErrors(`the workers processed ${distinct(log)} of 10 messages`)).toBe(10),
      { timeout: 8_000, interval: 50 });
    const idleWork = log.filter((p) => p.worker === idle).length;

    const lag = (partitions: number, each: number) => Array.from({ length: partitions }, (_, partition) => ({ partition, committed: 0, earliest: 0, latest: each, lag: each }));
    const planned = planWorkerCount(lag(2, 5_000), { lagPerWorker: 100 });
    expect(planned, `with 10,000 messages of lag on a 2-partition topic, planWorkerCount planned ${planned} workers. A partition ` +
      `has one owner in a group: just now, of 3 workers on 2 partitions, ${idle} owned none and processed ${idleWork} ` +
      `messages. Cap the plan at the partition count; more throughput needs more partitions (${WHERE}/scaling.ts).`).toBe(2);
    expect(planWorkerCount(lag(4, 60), { lagPerWorker: 100 }), 'a lag of 240 at 100 per worker needs 3 workers').toBe(3);
    expect(planWorkerCount(lag(4, 0), { lagPerWorker: 100 }), 'with no lag, keep the minimum of 1 worker').toBe(1);
  });
});

function whileProcessingTwo(committed: number): string {
  const where = `(${WHERE}/order-worker.ts)`;
  if (committed >= 3) {
    return `offset 2 is still being processed, yet ${committed} is already committed: the commit ran before the work ` +
      `finished. A crash now would skip offset 2 for good. Commit after handle() resolves ${where}.`;
  }
  if (committed === 1) {
    return 'offsets 0 and 1 are processed, but the committed offset is 1. The committed offset is the next message to ' +
      `read: commit message.offset + 1, or every restart processes the last message again ${where}.`;
  }
  return `offsets 0 and 1 are processed, but the committed offset is ${committed}. With autoCommit: false, commit each ` +
    `message (offset + 1) right after handling it, and await the commit ${where}.`;
}

function afterCrash(committed: number): string {
  const where = `(${WHERE}/order-worker.ts)`;
  if (committed >= 4) {
    return `worker A crashed right after processing offset 3, before its commit, yet ${committed} was committed: offset 3 ` +
      `was committed before it was processed. A crash a moment earlier would have lost that order ${where}.`;
  }
  return 'worker A should have committed offsets 0 to 2, each right after processing it, so the committed offset at the ' +
    `crash should be 3, the first message it did not finish; it is ${committed} ${where}.`;
}

/** One line per partition and field where `actual` differs from `expected`, with the reason for the expected value. */
function lagDifferences(actual: PartitionLag[], expected: PartitionLag[], why: Record<number, string>): string[] {
  if (!Array.isArray(actual)) return [`consumerLag returned ${JSON.stringify(actual)}, not a list of partitions`];
  const lines: string[] = [];
  const partitions = actual.map((p) => p?.partition);
  const wanted = expected.map((p) => p.partition);
  if (JSON.stringify(partitions) !== JSON.stringify(wanted)) {
    lines.push(`partitions listed: [${partitions.join(', ')}], expected [${wanted.join(', ')}] (every partition, sorted)`);
  }
  for (const want of expected) {
    const got = actual.find((p) => p?.partition === want.partition);
    if (!got) continue;
    for (const field of ['committed', 'earliest', 'latest', 'lag'] as const) {
      if (!Object.is(got[field], want[field])) {
        lines.push(`  partition ${want.partition}: ${field} is ${JSON.stringify(got[field])}, expected ${JSON.stringify(want[field])} (${why[want.partition]})`);
      }
    }
  }
  return lines;
}

/** Commits offsets for a group the way a member does: join, commit, leave. */
async function commitAsGroupMember(kafka: KafkaTestKit, groupId: string, topic: string, offsets: Array<{ partition: number; offset: string }>): Promise<void> {
  const consumer = kafka.client('check-committer').consumer({ groupId, ...CHECK_GROUP_TIMINGS });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic });
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: async () => undefined });
    consumer.pause([{ topic }]);
    // kafkajs drops a commit without a word while its runner restarts (a fetch that failed under
    // load): commit until the broker shows every offset, so a lost commit is not blamed on lag.ts.
    const admin = await kafka.adminFor(topic);
    const landed = await eventually(async () => {
      await consumer.commitOffsets(offsets.map((o) => ({ topic, ...o })));
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      return offsets.every((o) => committed?.partitions.find((p) => p.partition === o.partition)?.offset === o.offset);
    }, 15_000);
    if (!landed) throw new Error(`the check could not commit its own offsets for the group "${groupId}" within 15 s (the check's or the broker's problem, not yours)`);
  } finally {
    await consumer.disconnect();
  }
}
