import { gradedFolder } from './support/lesson.ts';
import { randomUUID } from 'node:crypto';
import { describe, it, vi } from './support/fixtures.ts';
import type { ExpectStatic } from 'vitest';
import type { KafkaMessage, Message } from 'kafkajs';
import { decodeOrderEvent, encodeOrderEvent, MalformedEventError } from '@lesson/07-kafka-basics/codec.ts';
import type { OrderEvent } from '@lesson/07-kafka-basics/events.ts';
import { startInventoryConsumer, type InventoryConsumerOptions, type ReceivedOrderEvent } from '@lesson/07-kafka-basics/inventory-consumer.ts';
import { OrderEventPublisher } from '@lesson/07-kafka-basics/order-publisher.ts';
import { ensureTopic } from '@lesson/07-kafka-basics/topics.ts';
import { CHECK_GROUP_TIMINGS, groupTimingsEnv, headerText, produce, type KafkaTestKit } from './support/kafka.ts';
import { uniqueName } from './support/names.ts';
import { serviceEnv } from './support/services.ts';
import { within } from './support/polling.ts';

const SLUG = '07-kafka-basics';
const WHERE = gradedFolder(SLUG);
/** Kafka's default max.message.bytes: the largest record batch a broker takes unless told otherwise. */
const KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;

const at = () => new Date().toISOString();

function placed(orderId: string, quantity = 1): OrderEvent {
  return { type: 'order.placed', eventId: randomUUID(), orderId, customerId: 'customer-7', lines: [{ sku: 'SKU-MUG', quantity }], placedAt: at() };
}

function amended(orderId: string, quantity: number): OrderEvent {
  return { type: 'order.amended', eventId: randomUUID(), orderId, lines: [{ sku: 'SKU-MUG', quantity }], amendedAt: at() };
}

function cancelled(orderId: string): OrderEvent {
  return { type: 'order.cancelled', eventId: randomUUID(), orderId, reason: 'changed my mind', cancelledAt: at() };
}

/** `orders` orders with `perOrder` events each, interleaved the way busy order traffic arrives. */
function interleavedLifecycles(orders: number, perOrder: number): OrderEvent[] {
  const lifecycles = Array.from({ length: orders }, () => {
    const orderId = `order-${randomUUID()}`;
    return [placed(orderId), ...Array.from({ length: perOrder - 2 }, (_, i) => amended(orderId, i + 2)), cancelled(orderId)];
  });
  const events: OrderEvent[] = [];
  for (let step = 0; step < perOrder; step++) for (const lifecycle of lifecycles) events.push(lifecycle[step]!);
  return events;
}

/** A correctly encoded message, written by the check itself: the consumer tests do not depend on the learner's producer. */
function wellFormed(event: OrderEvent, correlationId: string): Message {
  const { type, ...body } = event;
  return {
    key: event.orderId,
    value: JSON.stringify(body),
    headers: { 'event-type': type, 'event-version': '1', 'correlation-id': correlationId },
  };
}

async function connectedPublisher(kafka: KafkaTestKit, topic: string): Promise<OrderEventPublisher> {
  const publisher = new OrderEventPublisher(kafka.client('order-service'), topic);
  await publisher.connect();
  kafka.cleanup(() => publisher.disconnect());
  return publisher;
}

/**
 * The consumer requirements decode with the learner's codec: establish first that it decodes a
 * correct message, so a failure there names codec.ts and not the consumer.
 */
function expectCodecDecodes(expect: ExpectStatic, event: OrderEvent): void {
  let decoded: unknown;
  try {
    decoded = decodeOrderEvent(asDelivered(wellFormed(event, 'precondition'))).event;
  } catch (error) {
    throw new Error(`decodeOrderEvent threw "${error instanceof Error ? error.message : String(error)}" for a correct ` +
      `${event.type} message (key, the three headers, a valid JSON body). The consumer cannot deliver anything until it ` +
      `decodes (${WHERE}/codec.ts)`, { cause: error });
  }
  expect(decoded, `decodeOrderEvent should return { event, version, correlationId } with the event as it was published, type included (${WHERE}/codec.ts)`).toEqual(event);
}

/** A message the way kafkajs delivers it to a consumer: key, value and header values as Buffers. */
function asDelivered(message: Message): Pick<KafkaMessage, 'key' | 'value' | 'headers'> {
  const buffer = (value: string | Buffer | null | undefined) => (value === null || value === undefined ? null : Buffer.from(value));
  const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([name, value]) => [name, buffer(value as string)!]));
  return { key: buffer(message.key), value: buffer(message.value), headers };
}

type ConsumerHooks = Pick<InventoryConsumerOptions, 'onMalformed' | 'onHandlerFailed' | 'maxAttempts'>;

async function startConsumer(kafka: KafkaTestKit, topic: string, handle: (received: ReceivedOrderEvent) => Promise<void> | void, hooks: ConsumerHooks = {}) {
  const consumer = await startInventoryConsumer({
    kafka: kafka.client('inventory-service'),
    topic,
    groupId: kafka.groupId('inventory'),
    timings: { ...CHECK_GROUP_TIMINGS },
    handle,
    ...hooks,
  });
  kafka.cleanup(() => consumer.stop());
  return consumer;
}

/** An order with `lines` lines: a few kilobytes of JSON, for publishes larger than one request may be. */
function bulkyLifecycle(lines: number): OrderEvent[] {
  const orderId = `order-${randomUUID()}`;
  const many = (offset: number) => Array.from({ length: lines }, (_, i) => ({ sku: `SKU-${randomUUID()}`, quantity: i + offset }));
  return [
    { type: 'order.placed', eventId: randomUUID(), orderId, customerId: 'customer-7', lines: many(1), placedAt: at() },
    { type: 'order.amended', eventId: randomUUID(), orderId, lines: many(2), amendedAt: at() },
    cancelled(orderId),
  ];
}

/** What decodeOrderEvent threw for a message, or undefined when it returned. */
function decodeError(message: Message): unknown {
  try {
    decodeOrderEvent(asDelivered(message));
    return undefined;
  } catch (error) {
    return error;
  }
}

// Each requirement has its own topic and group; they run side by side.
describe.concurrent('07 kafka-basics', () => {
  it('decodeOrderEvent refuses an unknown type, another version, a missing or broken body and an invalid one, each with a MalformedEventError that says what is wrong', ({ expect }) => {
    const good = placed('order-codec');
    expectCodecDecodes(expect, good);
    const message = wellFormed(good, 'c-codec');
    const cases: Array<{ what: string; message: Message; mentions: RegExp; hint: string }> = [
      { what: 'an unknown event type', message: { ...message, headers: { ...message.headers, 'event-type': 'order.teleported' } },
        mentions: /order\.teleported|type/i, hint: 'check the type with isOrderEventType and name it' },
      { what: 'event-version "99"', message: { ...message, headers: { ...message.headers, 'event-version': '99' } },
        mentions: /99|version/i, hint: 'compare the version with ORDER_EVENT_VERSION: a consumer must not guess at a shape it does not know' },
      { what: 'no body at all', message: { ...message, value: null }, mentions: /body|value|empty/i, hint: 'a message without a value has no event in it' },
      { what: 'a body that is not JSON', message: { ...message, value: '{"orderId": "order-codec", ' }, mentions: /json/i,
        hint: 'catch what JSON.parse throws and turn it into a MalformedEventError' },
      { what: 'a line with quantity 0', message: { ...message, value: JSON.stringify({ ...JSON.parse(String(message.value)), lines: [{ sku: 'SKU-MUG', quantity: 0 }] }) },
        mentions: /lines|quantity/, hint: "validate the body with ORDER_EVENT_BODIES[type].safeParse and name the field that is wrong" },
    ];
    for (const { what, message: bad, mentions, hint } of cases) {
      const error = decodeError(bad);
      expect(error, `decodeOrderEvent accepted a message with ${what}: ${hint} (${WHERE}/codec.ts)`).toBeDefined();
      expect(error, `for a message with ${what}, decodeOrderEvent threw ${String(error)}, not a MalformedEventError: the ` +
        `consumer tells a message it can never read from a passing failure by that type (${WHERE}/codec.ts)`).toBeInstanceOf(MalformedEventError);
      expect((error as Error).message, `for a message with ${what}, the MalformedEventError should say what is wrong ` +
        `(${mentions}); it says "${(error as Error).message}": ${hint} (${WHERE}/codec.ts)`).toMatch(mentions);
    }
  });

  it('a publish larger than the broker takes in one request is sent in chunks, in order: every event arrives, each order\'s in sequence', async ({ kafka, expect }) => {
    // Kafka's default limit on one record batch, set on the topic so that a broker configured with a
    // larger message.max.bytes grades the same. About 2.4 MiB of events on one partition exceed it.
    const topic = await kafka.createTopic('orders', 1, { 'max.message.bytes': String(KAFKA_DEFAULT_MAX_MESSAGE_BYTES) });
    const lifecycles = Array.from({ length: 220 }, () => bulkyLifecycle(80));
    const events: OrderEvent[] = [];
    for (let step = 0; step < 3; step++) for (const lifecycle of lifecycles) events.push(lifecycle[step]!);
    const bytes = events.reduce((sum, event) => sum + JSON.stringify(event).length, 0);
    try {
      encodeOrderEvent(events[0]!, 'precondition');
    } catch (error) {
      throw new Error(`encodeOrderEvent threw "${error instanceof Error ? error.message : String(error)}": publish() cannot ` +
        `send anything until it encodes (${WHERE}/codec.ts)`, { cause: error });
    }
    const publisher = await connectedPublisher(kafka, topic);
    await publisher.publish(events, { correlationId: 'bulk-import-8' }).catch((error: unknown) => {
      throw new Error(`publish() of ${events.length} events (${(bytes / 1_048_576).toFixed(1)} MiB of JSON) failed: ` +
        `${error instanceof Error ? error.message : String(error)}. One record batch must stay under the topic's ` +
        'max.message.bytes (1 MiB here, Kafka\'s default): send a long list in chunks, each awaited before the next, so that a ' +
        `retried chunk cannot overtake a later one (${WHERE}/order-publisher.ts)`, { cause: error });
    });

    const messages = await kafka.readMessages(topic, events.length, 30_000);
    const eventIds = messages.map((m) => (JSON.parse(m.value?.toString() ?? 'null') as { eventId?: string } | null)?.eventId);
    expect(eventIds.length, `publish() resolved, yet the topic holds ${eventIds.length} messages for ${events.length} events ` +
      `(${WHERE}/order-publisher.ts)`).toBe(events.length);
    expect(eventIds, `the events are on the topic in another order than they were passed to publish(): chunks sent side by ` +
      `side can overtake each other, and an order's cancellation lands before the order (${WHERE}/order-publisher.ts)`)
      .toEqual(events.map((e) => e.eventId));
  });

  it('ensureTopic creates the topic with the requested number of partitions, and is safe to call again', async ({ kafka, expect }) => {
    const topic = uniqueName('orders');
    const admin = await kafka.adminFor(topic);
    kafka.cleanup(() => admin.deleteTopics({ topics: [topic] }).catch(() => undefined));

    await ensureTopic(admin, topic, 4);
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] }).catch(() => ({ topics: [] }));
    const partitions = topics[0]?.partitions.length ?? 0;
    expect(partitions, `ensureTopic(admin, "${topic}", 4) should create the topic with 4 partitions; it has ` +
      `${partitions || 'none (the topic does not exist)'}. Create it with admin.createTopics and an explicit ` +
      `numPartitions: a topic the broker auto-creates gets its default count (${WHERE}/topics.ts).`).toBe(4);

    await expect(ensureTopic(admin, topic, 4), 'calling ensureTopic again for an existing topic should succeed: ' +
      `services call it on every start (${WHERE}/topics.ts)`).resolves.toBeUndefined();
  });

  it('ensureTopic rejects a topic that already exists with another partition count, naming both counts', async ({ kafka, expect }) => {
    // Someone (or the broker's auto-create) made the topic first, with 2 partitions instead of 4.
    const topic = await kafka.createTopic('orders', 2);
    const admin = await kafka.adminFor(topic);
    let rejection: unknown;
    try {
      await ensureTopic(admin, topic, 4);
    } catch (error) {
      rejection = error;
    }
    if (rejection !== undefined) {
      const text = rejection instanceof Error ? rejection.message : String(rejection);
      if (/TODO/.test(text)) throw rejection;
      expect(text, `ensureTopic rejected, good; its message should name the partitions found (2) and the ones expected (4) ` +
        `so whoever reads the log knows what to fix. It says: "${text}" (${WHERE}/topics.ts)`).toMatch(/\b2\b[^]*\b4\b|\b4\b[^]*\b2\b/);
      return;
    }
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    throw new Error(`${topic} already had 2 partitions and ensureTopic(admin, topic, 4) resolved as if the topic were fine ` +
      `(the topic now has ${topics[0]?.partitions.length ?? 0}). createTopics resolves false for an existing topic without ` +
      'looking at it: compare its partition count (fetchTopicMetadata) with the one requested and throw when they differ. ' +
      'Starting on the wrong count silently means fewer consumers can share the work, and adding partitions later moves ' +
      `keys to other partitions, breaking per-order order (${WHERE}/topics.ts).`);
  });

  it('every message is keyed by its order id and carries event-type, event-version and correlation-id headers', async ({ kafka, expect }) => {
    const topic = await kafka.createTopic('orders', 3);
    const events = [placed('order-a'), amended('order-a', 3), placed('order-b'), cancelled('order-a')];
    const publisher = await connectedPublisher(kafka, topic);
    await publisher.publish(events, { correlationId: 'checkout-42' });

    const messages = await kafka.readMessages(topic, events.length);
    expect(messages.length, `publish() should write one message per event (${WHERE}/order-publisher.ts)`).toBe(events.length);
    for (const message of messages) {
      const type = headerText(message.headers, 'event-type');
      const body = JSON.parse(message.value?.toString() ?? 'null') as { orderId?: string; eventId?: string } | null;
      const event = events.find((e) => e.eventId === body?.eventId);
      expect(event, `a message body should be the event as JSON (with its eventId, orderId, ...), got ` +
        `${message.value?.toString()} (${WHERE}/codec.ts)`).toBeDefined();
      expect(message.key?.toString(), `the message for ${event!.type} of ${event!.orderId} has key ` +
        `${JSON.stringify(message.key?.toString() ?? null)}. The key must be the order id: Kafka hashes the key to ` +
        `choose the partition, and only messages on one partition keep their order (${WHERE}/codec.ts)`).toBe(event!.orderId);
      expect(type, `the "event-type" header is ${JSON.stringify(type ?? null)}, expected "${event!.type}". Consumers route on ` +
        `headers without parsing the body: put the type there, not (only) inside the JSON (${WHERE}/codec.ts)`).toBe(event!.type);
      expect(headerText(message.headers, 'event-version'), 'the "event-version" header should say which version of the ' +
        `${event!.type} payload this is ("1"), so consumers can tell old and new shapes apart (${WHERE}/codec.ts)`).toBe('1');
      expect(headerText(message.headers, 'correlation-id'), 'the "correlation-id" header should carry the correlation id ' +
        `passed to publish() ("checkout-42") (${WHERE}/codec.ts)`).toBe('checkout-42');
    }
  });

  it('all events of one order land on one partition and reach the consumer in publish order', async ({ kafka, expect }) => {
    const topic = await kafka.createTopic('orders', 4);
    const events = interleavedLifecycles(9, 6);
    const received: ReceivedOrderEvent[] = [];
    await startConsumer(kafka, topic, (r) => void received.push(r));

    const publisher = await connectedPublisher(kafka, topic);
    await publisher.publish(events, { correlationId: 'bulk-import-7' });

    await vi.waitFor(() => {
      expect(received.length, kafka.withHandlerErrors(`the inventory consumer received ${received.length} of ${events.length} events ` +
        `(${WHERE}/inventory-consumer.ts, order-publisher.ts)`)).toBeGreaterThanOrEqual(events.length);
    }, { timeout: 8_000, interval: 50 });

    // Delivery is at-least-once: a rebalance may hand a partition over before its last batch was
    // committed, and the new owner reads those events again. Order is about first deliveries.
    const firstDeliveries = received.filter((r, i) => received.findIndex((other) => other.event.eventId === r.event.eventId) === i);
    const orderIds = [...new Set(events.map((e) => e.orderId))];
    for (const orderId of orderIds) {
      const mine = firstDeliveries.filter((r) => r.event.orderId === orderId);
      const partitions = [...new Set(mine.map((r) => r.partition))];
      expect(partitions.length, `the events of ${orderId} were spread over partitions ${partitions.join(', ')}. ` +
        'Kafka orders messages within a partition only: give every event of an order the same key (the order id), ' +
        `not a random or missing one (${WHERE}/codec.ts)`).toBe(1);
      const sent = events.filter((e) => e.orderId === orderId).map((e) => e.type);
      expect(mine.map((r) => r.event.type), `the events of ${orderId} reached the consumer out of order: an amendment or ` +
        'cancellation before the order it changes corrupts the reservations').toEqual(sent);
    }
  });

  it('the inventory consumer group receives every event, decoded with its type, version and correlation id', async ({ kafka, expect }) => {
    const topic = await kafka.createTopic('orders', 3);
    const events = interleavedLifecycles(5, 3);
    expectCodecDecodes(expect, events[0]!);
    const producer = await kafka.producer();
    await produce(producer, topic, events.map((e) => wellFormed(e, 'checkout-9')));

    const received: ReceivedOrderEvent[] = [];
    const rejected: MalformedEventError[] = [];
    await startConsumer(kafka, topic, (r) => void received.push(r), { onMalformed: (error) => void rejected.push(error) });

    await vi.waitFor(() => {
      const why = rejected.length > 0
        ? `${rejected.length} well-formed messages were rejected as malformed, the first with "${rejected[0]!.message}": ` +
          `decodeOrderEvent should read type, version and correlation id from the headers (${WHERE}/codec.ts)`
        : 'A new group should start from the beginning of the topic (subscribe with fromBeginning: true) and hand every ' +
          `message to handle() (${WHERE}/inventory-consumer.ts)`;
      expect(received.length, kafka.withHandlerErrors(`startInventoryConsumer delivered ${received.length} of the ${events.length} ` +
        `events already on the topic. ${why}`)).toBeGreaterThanOrEqual(events.length);
    }, { timeout: 8_000, interval: 50 });

    expect(received.map((r) => r.event.eventId).sort(), 'each event should be delivered exactly once').toEqual(events.map((e) => e.eventId).sort());
    for (const r of received) {
      const sent = events.find((e) => e.eventId === r.event.eventId)!;
      expect(r.event, `handle() should receive the decoded event, type included (${WHERE}/codec.ts decodeOrderEvent)`).toEqual(sent);
      expect(r.version, 'the decoded version should come from the "event-version" header').toBe(1);
      expect(r.correlationId, 'the correlation id should come from the "correlation-id" header').toBe('checkout-9');
      expect(typeof r.offset === 'string' && typeof r.partition === 'number', 'each delivery should say its partition and offset').toBe(true);
    }
  });

  it('a malformed message is reported with its reason and skipped, and consumption continues', async ({ kafka, expect }) => {
    const topic = await kafka.createTopic('orders', 1);
    const good = placed('order-after-the-bad-ones');
    expectCodecDecodes(expect, good);
    const producer = await kafka.producer();
    await produce(producer, topic, [
      { key: 'order-1', value: JSON.stringify({ type: 'order.placed', orderId: 'order-1' }) },
      { key: 'order-2', value: '{"orderId": "order-2", oops', headers: { 'event-type': 'order.placed', 'event-version': '1', 'correlation-id': 'c' } },
      { key: 'order-3', value: JSON.stringify({ eventId: 'e3', orderId: 'order-3', lines: [{ sku: 'SKU-MUG', quantity: -2 }] }), headers: { 'event-type': 'order.placed', 'event-version': '1', 'correlation-id': 'c' } },
      wellFormed(good, 'c'),
    ]);

    const received: ReceivedOrderEvent[] = [];
    const reported: unknown[] = [];
    await startConsumer(kafka, topic, (r) => void received.push(r), { onMalformed: (error) => void reported.push(error) });

    await vi.waitFor(() => {
      expect(received.map((r) => r.event.eventId), kafka.withHandlerErrors('the valid event after three malformed ones never ' +
        'reached handle(): a bad message must be reported and skipped, not stop the partition or crash the consumer ' +
        `(${WHERE}/inventory-consumer.ts)`)).toEqual([good.eventId]);
    }, { timeout: 8_000, interval: 50 });
    expect(reported.length, 'each of the three malformed messages (no headers, broken JSON, a negative quantity) should ' +
      `be passed to onMalformed (${WHERE}/inventory-consumer.ts, codec.ts)`).toBe(3);
    for (const error of reported) {
      expect(error, `onMalformed should receive a MalformedEventError saying what is wrong (${WHERE}/codec.ts)`).toBeInstanceOf(MalformedEventError);
    }
    expect(String((reported[0] as Error).message), 'a message without headers should be reported as missing the ' +
      '"event-type" header').toMatch(/event-type/);
  });

  it('the order service and the inventory service disconnect cleanly when they finish or are stopped', async ({ kafka, procs, expect }) => {
    const topic = await kafka.createTopic('orders', 3);
    const groupId = kafka.groupId('inventory');
    const env = { ...serviceEnv('kafka'), ...groupTimingsEnv(), ORDERS_TOPIC: topic, INVENTORY_GROUP: groupId, ORDER_COUNT: '2' };
    const inventory = procs.start(SLUG, 'inventory-service.ts', { env, name: 'the inventory service' });
    const orders = procs.start(SLUG, 'order-service.ts', { env, name: 'the order service' });
    kafka.cleanup(() => Promise.all([inventory.stop(), orders.stop()]));

    const exit = await within(10_000, orders.exited, () => 'the order service published its events but never exited. ' +
      'A producer that is still connected keeps Node running: disconnect it when the work is done ' +
      `(OrderEventPublisher.disconnect in ${WHERE}/order-publisher.ts). Its output:\n${orders.output()}`);
    expect(exit.code, `the order service failed (exit code ${exit.code}). Its output:\n${orders.output()}`).toBe(0);

    await inventory.waitForOutput(/order\.cancelled/, 'consumed the published events', 10_000);
    await vi.waitFor(async () => {
      const { members } = await kafka.groupMembers(groupId, topic);
      expect(members.length, 'the inventory service should be a member of its group').toBe(1);
    }, { timeout: 5_000, interval: 100 });

    const stopped = await inventory.stop(4_000);
    const { state, members } = await kafka.groupMembers(groupId, topic);
    expect(members.length, `after SIGTERM the inventory service's member was still in group ${groupId} (state ${state}). ` +
      'A consumer that exits without consumer.disconnect() keeps its partitions, unprocessed, until the session ' +
      `times out. Stop the consumer on SIGTERM and SIGINT (${WHERE}/inventory-service.ts, inventory-consumer.ts).`).toBe(0);
    expect(stopped.signal, 'the inventory service did not handle SIGTERM (it was ended by the signal): stop the consumer, ' +
      `then exit (${WHERE}/inventory-service.ts)`).toBeNull();
    expect(stopped.code, `the inventory service should exit with code 0 after stopping. Its output:\n${inventory.output()}`).toBe(0);
  });
  it('a handler that awaits a random delay still gets each order\'s events in order, one message of a partition at a time', async ({ kafka, expect }) => {
    const topic = await kafka.createTopic('orders', 3);
    const events = interleavedLifecycles(8, 4);
    expectCodecDecodes(expect, events[0]!);
    const producer = await kafka.producer();
    await produce(producer, topic, events.map((e) => wellFormed(e, 'slow-handler')));

    const finished: ReceivedOrderEvent[] = [];
    const inFlight = new Map<number, number>();
    const overlaps: string[] = [];
    await startConsumer(kafka, topic, async (r) => {
      const busy = (inFlight.get(r.partition) ?? 0) + 1;
      inFlight.set(r.partition, busy);
      if (busy > 1) overlaps.push(`${r.event.type} of ${r.event.orderId} at ${r.partition}@${r.offset} started while ${busy - 1} other message(s) of partition ${r.partition} were still being handled`);
      try {
        await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 15)));
        finished.push(r);
      } finally {
        inFlight.set(r.partition, (inFlight.get(r.partition) ?? 1) - 1);
      }
    });

    await vi.waitFor(() => {
      const done = new Set(finished.map((r) => r.event.eventId)).size;
      expect(done, kafka.withHandlerErrors(`a handler that takes a few milliseconds finished ${done} of ${events.length} events. ` +
        `Await handle() inside eachMessage (${WHERE}/inventory-consumer.ts)`)).toBe(events.length);
    }, { timeout: 10_000, interval: 50 });

    expect(overlaps, `two messages of one partition were handled at the same time: ${overlaps[0]}. The next message of a ` +
      'partition must wait until the handler of the previous one has finished: await handle() in eachMessage instead of ' +
      `starting it and moving on (${WHERE}/inventory-consumer.ts)`).toEqual([]);
    const firstFinishes = finished.filter((r, i) => finished.findIndex((other) => other.event.eventId === r.event.eventId) === i);
    for (const orderId of new Set(events.map((e) => e.orderId))) {
      const sent = events.filter((e) => e.orderId === orderId).map((e) => e.type);
      const seen = firstFinishes.filter((r) => r.event.orderId === orderId).map((r) => r.event.type);
      expect(seen, `with a handler that awaits a short delay, the events of ${orderId} finished in the order ${seen.join(', ')} ` +
        `instead of ${sent.join(', ')}: a handler that is not awaited lets a later event overtake an earlier one ` +
        `(${WHERE}/inventory-consumer.ts)`).toEqual(sent);
    }
  });

  it('a handler that throws or rejects is retried a bounded number of times, then reported once and skipped, and later events still arrive', async ({ kafka, expect }) => {
    const topic = await kafka.createTopic('orders', 1);
    const flaky = placed('order-flaky');
    const throwing = placed('order-throws');
    const rejecting = placed('order-rejects');
    const after = placed('order-after-the-failures');
    expectCodecDecodes(expect, after);
    const producer = await kafka.producer();
    await produce(producer, topic, [flaky, throwing, rejecting, after].map((e) => wellFormed(e, 'failing-handler')));

    const attempts = new Map<string, number>();
    const handled: string[] = [];
    const reported: Array<{ orderId: string; error: unknown; attempts: number }> = [];
    await startConsumer(kafka, topic, (r) => {
      const orderId = r.event.orderId;
      const attempt = (attempts.get(orderId) ?? 0) + 1;
      attempts.set(orderId, attempt);
      if (orderId === flaky.orderId && attempt === 1) return Promise.reject(new Error('the stock service timed out (once)'));
      if (orderId === throwing.orderId) throw new Error('reservation rules broken for this order');
      if (orderId === rejecting.orderId) return new Promise<void>((_, reject) => setTimeout(() => reject(new Error('the database rejected the reservation')), 5));
      handled.push(orderId);
      return undefined;
    }, {
      maxAttempts: 3,
      onHandlerFailed: (error, r, tries) => void reported.push({ orderId: r.event.orderId, error, attempts: tries }),
    });

    await vi.waitFor(() => {
      expect(handled, kafka.withHandlerErrors(`the event after three whose handler failed never arrived (attempts so far: ` +
        `${JSON.stringify(Object.fromEntries(attempts))}). An error that escapes eachMessage makes kafkajs start over on ` +
        'the same message, again and again, and the partition behind it is stuck: catch what handle() throws or rejects ' +
        `with, retry up to maxAttempts times, then report it with onHandlerFailed and move on (${WHERE}/inventory-consumer.ts)`)).toContain(after.orderId);
    }, { timeout: 10_000, interval: 50 });

    expect(handled[0], `the handler failed once for ${flaky.orderId} and would have succeeded on a second try, but that event ` +
      `was never handled (attempts: ${attempts.get(flaky.orderId) ?? 0}): a failure is retried before it is given up ` +
      `(${WHERE}/inventory-consumer.ts)`).toBe(flaky.orderId);
    for (const [failing, how] of [[throwing, 'throws'], [rejecting, 'rejects']] as const) {
      const tries = attempts.get(failing.orderId) ?? 0;
      expect(tries, `a handler that always ${how} was called ${tries} times for ${failing.orderId} with maxAttempts: 3. Try it ` +
        `exactly maxAttempts times: fewer gives up on a passing problem, more is a loop (${WHERE}/inventory-consumer.ts)`).toBe(3);
      const reports = reported.filter((r) => r.orderId === failing.orderId);
      expect(reports.length, `a handler that always ${how} should be reported to onHandlerFailed once, after its last attempt; ` +
        `it was reported ${reports.length} times (${WHERE}/inventory-consumer.ts)`).toBe(1);
      expect(String((reports[0]!.error as Error)?.message), `onHandlerFailed should receive the error the handler ${how === 'throws' ? 'threw' : 'rejected with'} ` +
        `(${WHERE}/inventory-consumer.ts)`).toMatch(how === 'throws' ? /reservation rules/ : /database rejected/);
      expect(reports[0]!.attempts, `onHandlerFailed should be told how many attempts were made (${WHERE}/inventory-consumer.ts)`).toBe(3);
    }
    expect(reported.map((r) => r.orderId), `only the events whose handler failed every attempt are reported (${WHERE}/inventory-consumer.ts)`)
      .toEqual([throwing.orderId, rejecting.orderId]);
  });
});
