import { randomUUID } from 'node:crypto';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConfirmChannel, GetMessage } from 'amqplib';
import { CAPTURE_PAYMENT, ORDER_PLACED } from '@lesson/12-event-contracts/catalog.ts';
import { placeOrder } from '@lesson/12-event-contracts/checkout.ts';
import { startCommandHandler, startSubscriber, type DeliveryContext, type EventHandlers } from '@lesson/12-event-contracts/consumer.ts';
import { createMessage } from '@lesson/12-event-contracts/envelope.ts';
import type { CloudEvent, OrderPlacedV1, OrderPlacedV2, OrderPlacedV3 } from '@lesson/12-event-contracts/events.ts';
import { commandQueue, eventsExchange, parkedQueue, PARKED_REASON_HEADER, publishEvent, sendCommand, serviceQueue, type Topology } from '@lesson/12-event-contracts/messaging.ts';
import { startBilling } from '@lesson/12-event-contracts/services.ts';
import { orderPlacedV1ToV2, orderPlacedV2ToV3, upcast } from '@lesson/12-event-contracts/upcasters.ts';
import { describe, expect, test } from './support/fixtures.ts';
import { gradedFolder, lessonFile } from './support/lesson.ts';
import type { LessonProcess, ProcessGroup } from './support/processes.ts';
import { CLASSIC_QUEUE, closeConsumerChannel, type RabbitScope } from './support/rabbitmq.ts';
import { serviceEnv } from './support/services.ts';

const SLUG = '12-event-contracts';
const WHERE = gradedFolder(SLUG);
/** Generous for work that takes milliseconds on an idle machine: checks share two busy cores. */
const WAIT_MS = 8_000;

const TYPE = {
  v1: 'com.example.orders.order-placed.v1',
  v2: 'com.example.orders.order-placed.v2',
  v3: 'com.example.orders.order-placed.v3',
  capture: 'com.example.payments.capture-payment.v1',
  captured: 'com.example.payments.payment-captured.v1',
} as const;
const SCHEMA_V3 = 'https://schemas.example.com/orders/order-placed.v3.json';
const CLOUDEVENTS_JSON = 'application/cloudevents+json';
/** CloudEvents 1.0: attribute names are lowercase ASCII letters and digits, nothing else. */
const ATTRIBUTE_NAME = /^[a-z0-9]{1,20}$/;
/** A fact: reverse-DNS domain, a name whose last word is in the past tense, a version. */
const PAST_TENSE_FACT = /^com\.example\.[a-z]+\.[a-z]+(?:-[a-z]+)*(?:ed|paid|sent|sold|held|made|built|won|lost|left)\.v[1-9]\d*$/;
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$/;

type Json = Record<string, unknown>;

/** A file of the graded folder, with its line, as stack traces show it: `/…/12-event-contracts/messaging.ts:140`. */
const GRADED_FRAME = new RegExp(`${escapeRegExp(dirname(lessonFile(SLUG, 'catalog.ts')))}/([\\w./-]+\\.ts):(\\d+)`);
/** Where each TODO of the starter is thrown, for failures a consumer reports only in its log. */
const TODO_FILES: Record<string, string> = {
  createMessage: 'envelope.ts',
  followUp: 'envelope.ts',
  checkMessage: 'contracts.ts',
  orderPlacedV1ToV2: 'upcasters.ts',
  orderPlacedV2ToV3: 'upcasters.ts',
  upcast: 'upcasters.ts',
  publishEvent: 'messaging.ts',
  sendCommand: 'messaging.ts',
  park: 'messaging.ts',
  receive: 'consumer.ts',
};

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * A TODO that a consumer or a lesson process logged instead of throwing it at the check, as the error
 * the check should fail with: `TODO: park (lessons/12-event-contracts/messaging.ts:140)`, the place
 * taken from the logged stack where there is one.
 */
function todoIn(entries: readonly string[]): Error | undefined {
  for (const entry of entries) {
    const todo = /\bTODO: (\w+)/.exec(entry);
    if (!todo) continue;
    const frame = GRADED_FRAME.exec(entry.slice(todo.index));
    const file = TODO_FILES[todo[1]!];
    const where = frame ? `${WHERE}/${frame[1]}:${frame[2]}` : file && `${WHERE}/${file}`;
    return new Error(where ? `TODO: ${todo[1]} (${where})` : `TODO: ${todo[1]}`);
  }
  return undefined;
}

/**
 * One requirement's corner of the shop: its own namespace, so its exchange and queues are its own,
 * all registered for deletion. The check publishes raw messages itself where a requirement is
 * about the consumer, so consumer requirements do not depend on the learner's producer.
 */
class Shop {
  readonly topology: Topology;
  readonly logs: string[] = [];
  /** Lesson processes whose output is searched for TODOs too. */
  readonly processes: LessonProcess[] = [];

  constructor(private readonly rabbit: RabbitScope, unique: (prefix: string) => string) {
    this.topology = { namespace: unique('l12-shop') };
    rabbit.exchange(eventsExchange(this.topology));
    for (const queue of [...['billing', 'notifications'].map((s) => serviceQueue(this.topology, s)), commandQueue(this.topology, CAPTURE_PAYMENT)]) {
      rabbit.queue(queue);
      rabbit.queue(parkedQueue(queue));
    }
  }

  get exchange(): string {
    return eventsExchange(this.topology);
  }

  get paymentsQueue(): string {
    return commandQueue(this.topology, CAPTURE_PAYMENT);
  }

  readonly log = (line: string): void => void this.logs.push(line);

  /** Polls until the condition holds; fails at once when the consumer reports an unwritten TODO. */
  async until(condition: () => boolean | Promise<boolean>, failure: () => string | Promise<string>, timeoutMs = WAIT_MS): Promise<void> {
    await until(async () => {
      const todo = todoIn([...this.logs, ...this.processes.map((p) => p.output())]);
      if (todo) throw todo;
      return condition();
    }, failure, timeoutMs);
  }

  /** A queue of the check's own that receives a copy of everything published on the events exchange. */
  async tap(): Promise<string> {
    const channel = await this.rabbit.channel();
    await channel.assertExchange(this.exchange, 'topic', { durable: true });
    const { queue } = await channel.assertQueue('', { exclusive: true, arguments: CLASSIC_QUEUE });
    await channel.bindQueue(queue, this.exchange, '#');
    return queue;
  }

  /** Publishes bodies to the events exchange as a producer would, each with the given routing key. */
  async publishRaw(messages: Array<{ body: Json | Buffer; routingKey: string }>): Promise<Buffer[]> {
    const channel = await this.rabbit.confirmChannel();
    await channel.assertExchange(this.exchange, 'topic', { durable: true });
    const sent = messages.map(({ body, routingKey }) => {
      const content = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
      channel.publish(this.exchange, routingKey, content, { persistent: true, contentType: CLOUDEVENTS_JSON });
      return content;
    });
    await channel.waitForConfirms();
    return sent;
  }

  /** Starts the learner's subscriber for a service, on a connection of its own. */
  async subscriber(service: string, handlers: EventHandlers): Promise<{ channel: ConfirmChannel; queue: string }> {
    const channel = await this.rabbit.confirmChannel(await this.rabbit.connect());
    const { queue } = await startSubscriber(channel, this.topology, service, handlers, { log: this.log });
    return { channel, queue };
  }

  /** Waits until `count` messages are parked for `queue`, and takes them. */
  async parked(queue: string, count: number, what: string): Promise<Array<{ reason: string; content: Buffer }>> {
    await this.until(async () => ((await this.rabbit.readyMessages(parkedQueue(queue))) ?? 0) >= count, async () =>
      `${what}: ${count} message(s) should be parked in "${parkedQueue(queue)}", and ` +
      `${(await this.rabbit.readyMessages(parkedQueue(queue))) ?? 'no queue: it does not exist, so'} were. A message the ` +
      'consumer cannot handle goes to the parked queue with park(channel, message, queue, reason), and only then is ' +
      `it acknowledged (${WHERE}/consumer.ts, ${WHERE}/messaging.ts).${this.logTail()}`);
    return (await this.rabbit.drain(parkedQueue(queue))).map((message) => ({
      reason: String(message.properties.headers?.[PARKED_REASON_HEADER] ?? ''),
      content: message.content,
    }));
  }

  /** Waits until `count` messages have been handled or parked: every message published has been dealt with. */
  async settled(queue: string, handled: () => number, count: number, failure: () => string): Promise<void> {
    await this.until(async () => handled() + ((await this.rabbit.readyMessages(parkedQueue(queue))) ?? 0) >= count, failure);
  }

  logTail(): string {
    return this.logs.length ? `\nThe consumer logged:\n${this.logs.slice(-8).map((l) => `  ${l}`).join('\n')}` : '';
  }
}

/** Polls until the condition holds, or fails with the message (built when it fails, so it shows the latest state). */
async function until(condition: () => boolean | Promise<boolean>, failure: () => string | Promise<string>, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(await failure());
    await sleep(25);
  }
}

/** A CloudEvent as a producer of the given type and version would send it: the check's own, independent of the lesson. */
function cloudEvent(type: string, data: unknown, overrides: Json = {}): Json {
  const id = randomUUID();
  const [, , domain, name, version] = type.split('.');
  return {
    specversion: '1.0',
    id,
    source: '/check/legacy-checkout',
    type,
    time: new Date(Date.now() - 60_000).toISOString(),
    datacontenttype: 'application/json',
    dataschema: `https://schemas.example.com/${domain}/${name}.${version}.json`,
    correlationid: `flow-${id.slice(0, 8)}`,
    data,
    ...overrides,
  };
}

function orderV3(label: string): OrderPlacedV3 {
  return { orderId: `${label}-${randomUUID().slice(0, 8)}`, customer: { id: 'c-17', email: 'ada@example.com' }, total: { amountMinor: 4250, currency: 'EUR' } };
}

function parse(content: Buffer): Json | undefined {
  try {
    const json: unknown = JSON.parse(content.toString('utf8'));
    return typeof json === 'object' && json !== null ? (json as Json) : undefined;
  } catch {
    return undefined;
  }
}

function bodies(messages: GetMessage[]): Json[] {
  return messages.map((m) => parse(m.content) ?? { unreadable: m.content.toString('utf8').slice(0, 80) });
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Starts service-main.ts for one service instance and waits for its ready line. */
async function startService(procs: ProcessGroup, shop: Shop, service: string, instance: string, env: Record<string, string> = {}) {
  const started = procs.start(SLUG, 'service-main.ts', {
    name: `${instance} (service-main.ts)`,
    env: { ...serviceEnv('rabbitmq'), NAMESPACE: shop.topology.namespace, SERVICE: service, INSTANCE: instance, ...env },
  });
  shop.processes.push(started);
  await started.waitForOutput(/ready: consuming /, 'printed its ready line', 20_000);
  return started;
}

/** What a service logged about one message: `<type> id=… correlationid=… causationid=…`. */
function loggedMessages(output: string, verb: string): Array<{ type: string; id: string; correlationid: string; causationid: string }> {
  const pattern = new RegExp(`${verb} (\\S+) id=(\\S+) correlationid=(\\S+) causationid=(\\S+)`, 'g');
  return [...output.matchAll(pattern)].map((m) => ({ type: m[1]!, id: m[2]!, correlationid: m[3]!, causationid: m[4]! }));
}

// The archive: order-placed events exactly as they were published under each contract, and what each
// means in v3. An upcaster must read them the same way forever.
const ARCHIVED_V1: OrderPlacedV1[] = [
  { orderId: 'o-2021-0042', customerId: 'c-17', amount: 4250 },
  { orderId: 'o-2021-0043', customerId: 'c-18', amount: 0 },
  { orderId: 'o-2021-0044', customerId: 'c-19', amount: 1 },
  { orderId: 'o-2022-0871', customerId: 'c-20', amount: 129_999 },
];
const AS_V2 = (v1: OrderPlacedV1): OrderPlacedV2 => ({ orderId: v1.orderId, customerId: v1.customerId, total: { amountMinor: v1.amount, currency: 'EUR' } });
const AS_V3 = (v2: OrderPlacedV2): OrderPlacedV3 => ({ orderId: v2.orderId, customer: { id: v2.customerId }, total: v2.total });
const ARCHIVED_V2: OrderPlacedV2 = { orderId: 'o-2023-0421', customerId: 'c-31', total: { amountMinor: 1999, currency: 'USD' } };

describe.concurrent('12 event-contracts', () => {
  test('an order-placed event goes out as a structured CloudEvent: every attribute, a versioned type, lowercase extension names', async ({ rabbit, unique }) => {
    const shop = new Shop(rabbit, unique);
    const tap = await shop.tap();
    const channel = await rabbit.confirmChannel();
    const before = Date.now();
    const order = orderV3('o-first');
    const first = await placeOrder(channel, shop.topology, order);
    const second = await placeOrder(channel, shop.topology, orderV3('o-second'), { correlationId: 'checkout-request-7781' });
    const after = Date.now();

    const messages = await rabbit.drain(tap);
    expect(messages.length, `two placeOrder() calls put ${messages.length} message(s) on the "${shop.exchange}" exchange. ` +
      `publishEvent should publish each event to eventsExchange(topology) (${WHERE}/messaging.ts)`).toBe(2);
    const [message] = messages;
    expect(message!.properties.contentType, 'in structured content mode the whole CloudEvent is the body, and the ' +
      `content type says so: '${CLOUDEVENTS_JSON}' (${WHERE}/messaging.ts)`).toBe(CLOUDEVENTS_JSON);
    expect(message!.properties.deliveryMode, `events must be persistent (delivery mode 2): { persistent: true } (${WHERE}/messaging.ts)`).toBe(2);
    expect(message!.fields.routingKey, 'the routing key should be the event type, so each subscriber binds to the ' +
      `events it handles (${WHERE}/messaging.ts)`).toBe(TYPE.v3);

    const [body, secondBody] = bodies(messages);
    expect(body!.data, `the body should be the whole CloudEvent as JSON, with the order in "data" (${WHERE}/messaging.ts, ${WHERE}/envelope.ts)`).toEqual(order);
    const badNames = Object.keys(body!).filter((name) => !ATTRIBUTE_NAME.test(name) && name !== 'data');
    expect(badNames, 'CloudEvents attribute names are lowercase letters and digits only: correlationid, not ' +
      `correlationId, correlation_id or correlation-id (${WHERE}/envelope.ts)`).toEqual([]);
    expect(body!.specversion, `specversion is the CloudEvents version, "1.0" (${WHERE}/envelope.ts)`).toBe('1.0');
    expect(body!.type, 'the type names the fact and the version of its contract: ' +
      `com.example.orders.order-placed.v3 (${WHERE}/envelope.ts createMessage)`).toBe(TYPE.v3);
    expect(body!.dataschema, `dataschema is the URI of the contract the data follows (dataschemaOf) (${WHERE}/envelope.ts)`).toBe(SCHEMA_V3);
    expect(body!.datacontenttype, `datacontenttype says how to read data: 'application/json' (${WHERE}/envelope.ts)`).toBe('application/json');
    expect(body!.source, `source is the producing service, here the checkout: '/checkout' (${WHERE}/envelope.ts)`).toBe('/checkout');
    expect(typeof body!.id === 'string' && body!.id.length > 0, `every event needs an id (randomUUID()) (${WHERE}/envelope.ts)`).toBe(true);
    expect(body!.id, 'the published id should be the id of the event placeOrder returned').toBe(first.id);
    expect(secondBody!.id, `two events got the same id: make a new one for every message (${WHERE}/envelope.ts)`).not.toBe(body!.id);
    expect(message!.properties.messageId, `set the AMQP messageId to the event id (${WHERE}/messaging.ts)`).toBe(body!.id);
    expect(String(body!.time), `time must be an RFC 3339 timestamp, e.g. new Date().toISOString() (${WHERE}/envelope.ts)`).toMatch(RFC3339);
    const time = Date.parse(String(body!.time));
    expect(time >= before - 1_000 && time <= after + 1_000, `time should be when the order was placed, got ${String(body!.time)}`).toBe(true);
    expect(body!.correlationid, 'an event that starts a flow is its own correlation id: everything it causes carries ' +
      `that id (${WHERE}/envelope.ts createMessage)`).toBe(body!.id);
    expect(body!.causationid, `the first event of a flow has no cause: leave causationid out (${WHERE}/envelope.ts)`).toBeUndefined();
    expect(secondBody!.correlationid, 'an event placed for a request already under way keeps the correlation id it ' +
      `was given (options.correlationId) (${WHERE}/envelope.ts)`).toBe('checkout-request-7781');
    expect(second.correlationid).toBe('checkout-request-7781');
  });

  test('the producer refuses an event that breaks its contract, and a command, and publishes nothing', async ({ rabbit, unique }) => {
    const shop = new Shop(rabbit, unique);
    const tap = await shop.tap();
    const channel = await rabbit.confirmChannel();
    const valid = createMessage(ORDER_PLACED, orderV3('o-valid'), { source: '/checkout' });
    await publishEvent(channel, shop.topology, valid);
    expect(await rabbit.readyMessages(tap), `publishEvent did not publish a valid event (${WHERE}/messaging.ts)`).toBe(1);

    const broken = createMessage(ORDER_PLACED, { ...orderV3('o-broken'), total: { amountMinor: -500, currency: 'EUR' } }, { source: '/checkout' });
    const outcome = await publishEvent(channel, shop.topology, broken).then(() => 'resolved', (error: unknown) => `rejected: ${errorText(error)}`);
    expect(outcome, 'publishEvent published an order whose total is -500, which the v3 contract forbids (minimum 0). ' +
      'Check the event with checkMessage before publishing and reject with the reason: a producer must not publish ' +
      `what its consumers will reject (${WHERE}/messaging.ts)`).toMatch(/^rejected/);
    expect(outcome, 'the error should name the failing field, /data/total/amountMinor').toContain('total/amountMinor');

    const command = createMessage(CAPTURE_PAYMENT, { orderId: 'o-valid', total: { amountMinor: 4250, currency: 'EUR' } }, { source: '/billing' });
    const asEvent = await publishEvent(channel, shop.topology, command).then(() => 'resolved', (error: unknown) => `rejected: ${errorText(error)}`);
    expect(asEvent, 'publishEvent published the capture-payment command on the events exchange, where every ' +
      `subscriber gets a copy. Refuse commands: they go to one handler with sendCommand (${WHERE}/messaging.ts)`).toMatch(/^rejected/);
    expect(await rabbit.readyMessages(tap), 'only the valid event should have reached the events exchange').toBe(1);
  });

  test('billing asks payments with a command on the payments queue, and the events exchange carries only past-tense facts with a version', async ({ rabbit, unique }) => {
    const shop = new Shop(rabbit, unique);
    const tap = await shop.tap();
    const billing = await rabbit.confirmChannel(await rabbit.connect());
    await startBilling(billing, shop.topology, { instance: 'billing', log: shop.log });
    const order = await placeOrder(await rabbit.confirmChannel(), shop.topology, orderV3('o-billing'));

    // Billing's request lands either in the payments queue (a command) or on the events exchange (an event in disguise).
    await shop.until(async () => ((await rabbit.readyMessages(shop.paymentsQueue)) ?? 0) >= 1 || ((await rabbit.readyMessages(tap)) ?? 0) >= 2,
      () => `billing handled order ${order.data.orderId} but its capture-payment command never reached "${shop.paymentsQueue}". ` +
        `sendCommand should send the command to commandQueue(topology, name) (${WHERE}/messaging.ts).${shop.logTail()}`);
    await sleep(50); // anything else billing sent is on its way by now
    const events = bodies(await rabbit.drain(tap));
    const commands = await rabbit.drain(shop.paymentsQueue);

    const types = events.map((e) => String(e.type));
    expect(types.filter((type) => type.startsWith('com.example.payments.capture-payment')), 'billing published its ' +
      'capture-payment request on the events exchange: every service bound there gets a copy, so it is a command ' +
      'disguised as an event, and two services may both act on it. A command goes point-to-point to the queue of the ' +
      `one service that runs it: sendCommand sends it there through the default exchange (${WHERE}/messaging.ts)`).toEqual([]);
    for (const type of types) {
      expect(type, 'everything on the events exchange should be a fact, named in the past tense with the version of ' +
        `its contract, like com.example.orders.order-placed.v3 (${WHERE}/envelope.ts, ${WHERE}/messaging.ts)`).toMatch(PAST_TENSE_FACT);
    }
    expect(types, 'the order-placed event should be on the events exchange').toEqual([TYPE.v3]);

    expect(commands.length, `one order should give one command in "${shop.paymentsQueue}"`).toBe(1);
    const [command] = commands;
    expect(command!.fields.exchange, 'the command should arrive through the default exchange (""), straight to its ' +
      `queue: channel.publish('', queue, …) or sendToQueue (${WHERE}/messaging.ts)`).toBe('');
    expect(command!.properties.contentType, `commands are CloudEvents in structured mode too (${WHERE}/messaging.ts)`).toBe(CLOUDEVENTS_JSON);
    const body = parse(command!.content);
    expect(body?.type, 'a command is named as an imperative with a version').toBe(TYPE.capture);
    expect(body?.causationid, `the command was caused by the order-placed event: its causationid is that event's id (${WHERE}/envelope.ts followUp)`).toBe(order.id);
  });

  test('an event reaches every subscribing service, once per service, however many instances each runs', async ({ rabbit, unique }) => {
    const shop = new Shop(rabbit, unique);
    const handled: Array<{ service: string; instance: string; orderId: string }> = [];
    const record = (service: string, instance: string): EventHandlers => ({
      [ORDER_PLACED]: async (event) => void handled.push({ service, instance, orderId: event.data.orderId }),
    });
    await shop.subscriber('billing', record('billing', 'billing-a'));
    await shop.subscriber('billing', record('billing', 'billing-b'));
    await shop.subscriber('notifications', record('notifications', 'notifications-a'));
    const channel = await rabbit.confirmChannel();
    const orders = Array.from({ length: 6 }, (_, i) => orderV3(`o-fan-${i}`));
    for (const order of orders) await placeOrder(channel, shop.topology, order);

    const handledBy = (service: string) => handled.filter((h) => h.service === service).map((h) => h.orderId).sort();
    await shop.until(() => handled.length >= orders.length * 2, () => `${orders.length} orders were placed; billing handled ` +
      `${handledBy('billing').length} and notifications ${handledBy('notifications').length}, and each should handle all ` +
      `${orders.length}. publishEvent publishes to the events exchange with the event's type as the routing key, which ` +
      `each service's queue is bound to (${WHERE}/messaging.ts, ${WHERE}/consumer.ts).${shop.logTail()}`);
    await sleep(100); // a duplicate would arrive now
    const ids = orders.map((o) => o.orderId).sort();
    expect(handledBy('billing'), 'billing runs two instances on its one queue: each order should be handled by one ' +
      `of them, once (${WHERE}/consumer.ts)`).toEqual(ids);
    expect(handledBy('notifications'), `notifications should handle every order once (${WHERE}/consumer.ts)`).toEqual(ids);
  });

  test('a command reaches exactly one handler: two payments instances share its queue, one of them runs each command, and no subscriber sees it', async ({ rabbit, unique }) => {
    const shop = new Shop(rabbit, unique);
    const tap = await shop.tap();
    const runs: Array<{ instance: string; id: string }> = [];
    for (const instance of ['payments-a', 'payments-b']) {
      const channel = await rabbit.confirmChannel(await rabbit.connect());
      await startCommandHandler(channel, shop.topology, CAPTURE_PAYMENT, async (command) => {
        await sleep(20);
        runs.push({ instance, id: command.id });
      }, { log: shop.log });
    }
    const channel = await rabbit.confirmChannel();
    const commands = Array.from({ length: 4 }, (_, i) =>
      createMessage(CAPTURE_PAYMENT, { orderId: `o-cmd-${i}`, total: { amountMinor: 1000 + i, currency: 'EUR' } }, { source: '/billing' }));
    for (const command of commands) await sendCommand(channel, shop.topology, command);

    await shop.until(async () => runs.length >= commands.length || ((await rabbit.readyMessages(tap)) ?? 0) > 0, () =>
      `${commands.length} commands were sent and the payments instances ran ${runs.length}. sendCommand should send ` +
      `each to the payments queue, "${shop.paymentsQueue}" (${WHERE}/messaging.ts).${shop.logTail()}`);
    await sleep(100); // a second run of a command would show now
    const onExchange = bodies(await rabbit.drain(tap)).map((b) => String(b.type));
    expect(onExchange, 'the commands went to the events exchange, where every subscriber gets a copy: a command ' +
      `disguised as an event. Send it to the one queue of the service that runs it (${WHERE}/messaging.ts sendCommand)`).toEqual([]);
    for (const command of commands) {
      const by = runs.filter((r) => r.id === command.id).map((r) => r.instance);
      expect(by.length, `command ${command.data.orderId} was run ${by.length} times (${by.join(', ') || 'by nobody'}): the two ` +
        `payments instances share one queue, so exactly one of them runs it (${WHERE}/messaging.ts, ${WHERE}/consumer.ts)`).toBe(1);
    }
    expect(await rabbit.readyMessages(shop.paymentsQueue), 'every command was run, so the payments queue should be empty').toBe(0);
  });

  test('an event whose payload breaks its contract is parked with the failing field path, and the consumer goes on', async ({ rabbit, unique }) => {
    const shop = new Shop(rabbit, unique);
    const handled: string[] = [];
    const { channel, queue } = await shop.subscriber('billing', { [ORDER_PLACED]: async (event) => void handled.push(String(event.data.orderId)) });
    const valid = orderV3('o-valid');
    const invalid = [
      { path: '/data/total/amountMinor', body: cloudEvent(TYPE.v3, { ...orderV3('o-cents-as-text'), total: { amountMinor: '42.50', currency: 'EUR' } }) },
      { path: '/data/orderId', body: cloudEvent(TYPE.v3, { customer: { id: 'c-1' }, total: { amountMinor: 100, currency: 'EUR' } }) },
      { path: '/data/customer/email', body: cloudEvent(TYPE.v3, { ...orderV3('o-bad-email'), customer: { id: 'c-2', email: 'not-an-address' } }) },
      { path: '/data/amount', body: cloudEvent(TYPE.v1, { orderId: 'o-negative', customerId: 'c-3', amount: -1 }) },
    ];
    const sent = await shop.publishRaw([
      ...invalid.map(({ body }) => ({ body, routingKey: String(body.type) })),
      { body: cloudEvent(TYPE.v3, valid), routingKey: TYPE.v3 },
    ]);

    await shop.until(() => handled.includes(valid.orderId), () => `after four events with invalid payloads, a valid one was ` +
      `never handled: an event that breaks its contract must be parked and acknowledged, so the consumer goes on ` +
      `with the next (${WHERE}/consumer.ts).${shop.logTail()}`);
    await shop.settled(queue, () => handled.length, sent.length, () => `of ${sent.length} events, ${handled.length} were handled ` +
      `and the rest neither handled nor parked (${WHERE}/consumer.ts).${shop.logTail()}`);
    expect(handled, 'events whose data breaks the contract reached the handler. Validating the envelope is not enough: ' +
      `check data against the contract its type names (${WHERE}/contracts.ts checkMessage)`).toEqual([valid.orderId]);
    const parked = await shop.parked(queue, invalid.length, 'four events broke their contracts');
    invalid.forEach(({ path }, i) => {
      const copy = parked.find((p) => p.content.equals(sent[i]!));
      expect(copy, `the event with the bad ${path} was not parked as it arrived: park a copy of the original body ` +
        `(${WHERE}/messaging.ts park)`).toBeDefined();
      expect(copy!.reason, `the reason in the ${PARKED_REASON_HEADER} header should name the failing field, ${path} ` +
        `(ajv's instancePath, under /data) (${WHERE}/contracts.ts)`).toContain(path);
    });
    await closeConsumerChannel(channel);
    expect(await rabbit.readyMessages(queue), 'messages went back to the queue when the consumer closed: every message ' +
      `must be acknowledged once it is parked (${WHERE}/consumer.ts)`).toBe(0);
  });

  test('a message that is not a valid CloudEvent is parked with the failing attribute, and the consumer goes on', async ({ rabbit, unique }) => {
    const shop = new Shop(rabbit, unique);
    const handled: string[] = [];
    const { channel, queue } = await shop.subscriber('billing', { [ORDER_PLACED]: async (event) => void handled.push(event.data.orderId) });
    const { correlationid, ...noCorrelation } = cloudEvent(TYPE.v3, orderV3('o-camel'));
    const { source: _source, ...noSource } = cloudEvent(TYPE.v3, orderV3('o-no-source'));
    const invalid: Array<{ names: RegExp; what: string; body: Json | Buffer }> = [
      { what: 'a body that is not JSON', names: /JSON/i, body: Buffer.from('<order id="o-xml"/>') },
      { what: 'time "yesterday"', names: /\/time\b/, body: cloudEvent(TYPE.v3, orderV3('o-time'), { time: 'yesterday' }) },
      { what: 'no source', names: /\/source\b/, body: noSource },
      { what: 'specversion "0.3"', names: /\/specversion\b/, body: cloudEvent(TYPE.v3, orderV3('o-spec'), { specversion: '0.3' }) },
      { what: 'a correlationId attribute (camelCase)', names: /correlationId/, body: { ...noCorrelation, correlationId: correlationid } },
      { what: 'a type without a version', names: /\/type\b/, body: cloudEvent('com.example.orders.order-placed', orderV3('o-unversioned')) },
    ];
    const valid = orderV3('o-valid');
    const sent = await shop.publishRaw([...invalid.map(({ body }) => ({ body, routingKey: TYPE.v3 })), { body: cloudEvent(TYPE.v3, valid), routingKey: TYPE.v3 }]);

    await shop.until(() => handled.includes(valid.orderId), () => 'after six messages that are not valid CloudEvents, a valid ' +
      `event was never handled: park what cannot be read, acknowledge it, and go on (${WHERE}/consumer.ts).${shop.logTail()}`);
    await shop.settled(queue, () => handled.length, sent.length, () => `of ${sent.length} messages, ${handled.length} were handled ` +
      `and the rest neither handled nor parked (${WHERE}/consumer.ts).${shop.logTail()}`);
    expect(handled, `only the valid event should reach the handler (${WHERE}/contracts.ts checkMessage)`).toEqual([valid.orderId]);
    const parked = await shop.parked(queue, invalid.length, 'six messages were not valid CloudEvents');
    invalid.forEach(({ what, names }, i) => {
      const copy = parked.find((p) => p.content.equals(sent[i]!));
      expect(copy, `the message with ${what} was not parked as it arrived (${WHERE}/messaging.ts park)`).toBeDefined();
      expect(copy!.reason, `the parked reason for the message with ${what} should name what is wrong (${names}) ` +
        `(${WHERE}/contracts.ts)`).toMatch(names);
    });
    await closeConsumerChannel(channel);
    expect(await rabbit.readyMessages(queue), `every message should be acknowledged once parked (${WHERE}/consumer.ts)`).toBe(0);
  });

  test('v1 and v2 events reach the handler upcast to v3, with every other attribute of the envelope unchanged', async ({ rabbit, unique }) => {
    const shop = new Shop(rabbit, unique);
    const seen: Array<{ event: CloudEvent<OrderPlacedV3>; context: DeliveryContext }> = [];
    const { queue } = await shop.subscriber('billing', { [ORDER_PLACED]: async (event, context) => void seen.push({ event, context }) });
    const v1 = ARCHIVED_V1[0]!;
    const v3 = orderV3('o-current');
    const published = [
      cloudEvent(TYPE.v1, v1, { causationid: 'cart-checked-out-1' }),
      cloudEvent(TYPE.v2, ARCHIVED_V2),
      cloudEvent(TYPE.v3, v3, { source: '/checkout' }),
    ];
    const expected = [AS_V3(AS_V2(v1)), AS_V3(ARCHIVED_V2), v3];
    await shop.publishRaw(published.map((body) => ({ body, routingKey: String(body.type) })));

    await shop.until(async () => seen.length >= published.length || ((await rabbit.readyMessages(parkedQueue(queue))) ?? 0) > 0, async () =>
      `v1, v2 and v3 order-placed events were published and the handler received ${seen.length} ` +
      `(${WHERE}/consumer.ts, ${WHERE}/upcasters.ts).${shop.logTail()}`);
    const parked = (await rabbit.drain(parkedQueue(queue))).map((p) => String(p.properties.headers?.[PARKED_REASON_HEADER]));
    expect(parked, 'archived events were parked instead of reaching the handler, for these reasons. An old version ' +
      'is upcast to the latest, and what the upcasters make of it must keep the v3 contract, envelope included ' +
      `(${WHERE}/upcasters.ts, ${WHERE}/consumer.ts)`).toEqual([]);
    published.forEach((original, i) => {
      const got = seen.find((s) => s.event.id === original.id);
      expect(got, `the ${String(original.type)} event never reached the handler (${WHERE}/consumer.ts)`).toBeDefined();
      const { event, context } = got!;
      expect(event.type, `handlers are written against the latest version: a ${String(original.type)} event should ` +
        `reach them as ${TYPE.v3} (${WHERE}/upcasters.ts upcast)`).toBe(TYPE.v3);
      expect(event.data, `the ${String(original.type)} payload upcast to v3 (${WHERE}/upcasters.ts)`).toEqual(expected[i]);
      expect(event.dataschema, `after upcasting, dataschema names the v3 contract (${WHERE}/upcasters.ts)`).toBe(SCHEMA_V3);
      for (const attribute of ['id', 'source', 'time', 'specversion', 'datacontenttype', 'correlationid', 'causationid']) {
        expect((event as unknown as Json)[attribute], `upcasting changes what data says, not which event it is: ${attribute} ` +
          `must stay ${JSON.stringify(original[attribute])} (${WHERE}/upcasters.ts upcast)`).toEqual(original[attribute]);
      }
      expect(context.receivedAs, 'the handler context tells which version arrived on the wire').toBe(original.type);
    });
  });

  test('upcasters are pure functions that chain: v1 → v2 → v3 on deep-frozen input, which stays unchanged', async () => {
    const call = <T>(what: string, run: () => T): T => {
      try {
        return run();
      } catch (error) {
        if (/^TODO: /.test(errorText(error))) throw error;
        throw new Error(`${what} threw on a deep-frozen input: ${errorText(error)}. An upcaster must build and return a new ` +
          'object, never change (assign, delete, push into) the one it is given: the caller may still log it, park it ' +
          `or retry with it (${WHERE}/upcasters.ts)`, { cause: error });
      }
    };
    for (const v1 of ARCHIVED_V1) {
      const input = deepFreeze(structuredClone(v1));
      const v2 = call('orderPlacedV1ToV2', () => orderPlacedV1ToV2(input));
      expect(input, 'orderPlacedV1ToV2 changed its input').toEqual(v1);
      expect(v2, `orderPlacedV1ToV2(${JSON.stringify(v1)}): a v1 amount is euro cents (${WHERE}/upcasters.ts)`).toEqual(AS_V2(v1));
      const frozenV2 = deepFreeze(structuredClone(v2));
      const v3 = call('orderPlacedV2ToV3', () => orderPlacedV2ToV3(frozenV2));
      expect(v3, `orderPlacedV2ToV3(${JSON.stringify(v2)}) (${WHERE}/upcasters.ts)`).toEqual(AS_V3(AS_V2(v1)));
      expect(orderPlacedV1ToV2(input), 'an upcaster called twice with the same input should return the same result').toEqual(v2);
    }

    const v1Event = deepFreeze(cloudEvent(TYPE.v1, ARCHIVED_V1[0])) as unknown as CloudEvent;
    const snapshot = structuredClone(v1Event);
    const upcast1 = call('upcast (from v1)', () => upcast(v1Event, ORDER_PLACED, 1));
    expect(v1Event, 'upcast changed the event it was given').toEqual(snapshot);
    expect(upcast1.data, `upcast from v1 should chain orderPlacedV1ToV2 and then orderPlacedV2ToV3 (${WHERE}/upcasters.ts upcast)`)
      .toEqual(orderPlacedV2ToV3(orderPlacedV1ToV2(ARCHIVED_V1[0]!)));
    expect(upcast1.type, `upcast should set the type to the latest version (${WHERE}/upcasters.ts)`).toBe(TYPE.v3);

    const v2Event = deepFreeze(cloudEvent(TYPE.v2, ARCHIVED_V2)) as unknown as CloudEvent;
    expect(call('upcast (from v2)', () => upcast(v2Event, ORDER_PLACED, 2)).data, `upcast from v2 runs only orderPlacedV2ToV3 (${WHERE}/upcasters.ts)`)
      .toEqual(AS_V3(ARCHIVED_V2));
    const current = orderV3('o-current');
    const v3Event = deepFreeze(cloudEvent(TYPE.v3, current)) as unknown as CloudEvent;
    expect(call('upcast (from v3)', () => upcast(v3Event, ORDER_PLACED, 3)), `a v3 event is already the latest: upcast returns it as it is (${WHERE}/upcasters.ts)`)
      .toEqual(v3Event);
  });

  test('a v1 event means what it meant when v1 was published: its amount in euro cents reaches the handler as the same minor units', async ({ rabbit, unique }) => {
    const shop = new Shop(rabbit, unique);
    const seen = new Map<string, OrderPlacedV3>();
    const { queue } = await shop.subscriber('billing', { [ORDER_PLACED]: async (event) => void seen.set(event.data.orderId, event.data) });
    // Exactly as the 2021 checkout published them, under the v1 contract as it was then.
    await shop.publishRaw(ARCHIVED_V1.map((data) => ({ body: cloudEvent(TYPE.v1, data), routingKey: TYPE.v1 })));

    await shop.until(async () => seen.size >= ARCHIVED_V1.length || ((await rabbit.readyMessages(parkedQueue(queue))) ?? 0) > 0, () =>
      `${ARCHIVED_V1.length} archived v1 events were published and ${seen.size} reached the handler (${WHERE}/consumer.ts).${shop.logTail()}`);
    const parked = await rabbit.drain(parkedQueue(queue));
    expect(parked.map((p) => String(p.properties.headers?.[PARKED_REASON_HEADER])), 'v1 events exactly as they were published ' +
      'were parked instead of handled, for these reasons. A published contract is frozen: every event it accepted then it ' +
      `must accept now, and upcast to a valid v3 (${WHERE}/contracts/order-placed.v1.json, ${WHERE}/upcasters.ts)`).toEqual([]);
    for (const v1 of ARCHIVED_V1) {
      const total = seen.get(v1.orderId)?.total;
      expect(total, `v1 order ${v1.orderId} was published with amount ${v1.amount}, which the v1 contract defined as euro ` +
        `cents (EUR ${(v1.amount / 100).toFixed(2)}), and it reached the handler as ${JSON.stringify(total)}. A field keeps ` +
        'the meaning it had when its version was published: to change a unit, publish a new version and upcast to it; ' +
        `never reinterpret an old one (${WHERE}/upcasters.ts, ${WHERE}/contracts/order-placed.v1.json)`).toEqual({ amountMinor: v1.amount, currency: 'EUR' });
    }
  });

  test('an unknown version is parked as unknown, never handled as the latest', async ({ rabbit, unique }) => {
    const shop = new Shop(rabbit, unique);
    const handled: Array<{ orderId: string; receivedAs: string }> = [];
    const { queue } = await shop.subscriber('billing', { [ORDER_PLACED]: async (event, context) => void handled.push({ orderId: event.data.orderId, receivedAs: context.receivedAs }) });
    // v4 from a checkout deployed ahead of this consumer, shaped like v3 so that a guess would "work";
    // v9 from who knows where.
    const v4 = cloudEvent('com.example.orders.order-placed.v4', orderV3('o-from-the-future'));
    const v9 = cloudEvent('com.example.orders.order-placed.v9', { orderId: 'o-v9', basket: [{ sku: 'SKU-1', cents: 100 }] });
    const valid = orderV3('o-valid');
    const sent = await shop.publishRaw([
      { body: v4, routingKey: String(v4.type) },
      { body: v9, routingKey: String(v9.type) },
      { body: cloudEvent(TYPE.v3, valid), routingKey: TYPE.v3 },
    ]);

    await shop.until(() => handled.some((h) => h.orderId === valid.orderId), () => 'after events of two unknown versions, a v3 ' +
      `event was never handled (${WHERE}/consumer.ts).${shop.logTail()}`);
    await shop.settled(queue, () => handled.length, sent.length, () => `of ${sent.length} events, ${handled.length} were handled ` +
      `and the rest neither handled nor parked: an unknown version is parked, never dropped (${WHERE}/consumer.ts).${shop.logTail()}`);
    expect(handled.map((h) => `${h.orderId} (received as ${h.receivedAs})`), 'an event of a version this code has no ' +
      'contract for reached the handler as if it were the latest. v4 may rename, re-unit or drop any field: never guess. ' +
      `A version with no contract is unknown, and unknown is parked (${WHERE}/contracts.ts checkMessage)`).toEqual([`${valid.orderId} (received as ${TYPE.v3})`]);
    const parked = await shop.parked(queue, 2, 'two events had versions this code does not know');
    for (const [i, version] of [[0, 'v4'], [1, 'v9']] as const) {
      const copy = parked.find((p) => p.content.equals(sent[i]!));
      expect(copy, `the ${version} event was not parked as it arrived (${WHERE}/messaging.ts park)`).toBeDefined();
      expect(copy!.reason, `the reason should say the version is unknown and name it (${version}), so whoever reads the ` +
        `parked queue knows to upgrade the consumer rather than fix the event (${WHERE}/contracts.ts)`).toMatch(new RegExp(`\\b${version}\\b`));
      expect(copy!.reason).toMatch(/unknown|not know|unsupported/i);
    }
  });

  test('across two hops, order-placed → capture-payment → payment-captured, every message keeps the correlation id and names its parent as its cause', async ({ rabbit, unique, procs }) => {
    const shop = new Shop(rabbit, unique);
    const tap = await shop.tap();
    const [billing, payments] = await Promise.all([
      startService(procs, shop, 'billing', 'billing'),
      startService(procs, shop, 'payments', 'payments-a', { CAPTURE_MS: '0' }),
    ]);
    const channel = await rabbit.confirmChannel();
    // One order starts a flow (its own id is the correlation id); one joins a checkout request already under way.
    const orders = [
      await placeOrder(channel, shop.topology, orderV3('o-hop-new')),
      await placeOrder(channel, shop.topology, orderV3('o-hop-request'), { correlationId: `checkout-request-${randomUUID().slice(0, 8)}` }),
    ];

    const events: Json[] = [];
    const captured = () => events.filter((e) => e.type === TYPE.captured);
    await shop.until(async () => {
      events.push(...bodies(await rabbit.drain(tap)));
      const disguised = events.find((e) => String(e.type).startsWith('com.example.payments.capture-payment'));
      if (disguised) {
        throw new Error(`the capture-payment command ${String(disguised.id)} was published on the events exchange, so the ` +
          `payments queue never got it: send commands with sendCommand, to the queue of the one service that runs them (${WHERE}/messaging.ts)`);
      }
      return captured().length >= orders.length;
    }, () => `${orders.length} orders were placed and ${captured().length} payment-captured events were published. ` +
      'billing sends a capture-payment command per order, payments runs it and publishes payment-captured ' +
      `(${WHERE}/messaging.ts, ${WHERE}/consumer.ts).\nbilling:\n${billing.output().slice(-1500)}\npayments:\n${payments.output().slice(-1500)}`);

    const commands = loggedMessages(payments.output(), 'capturing');
    for (const order of orders) {
      const command = commands.find((c) => c.causationid === order.id);
      expect(command, `no capture-payment command named order-placed ${order.id} as its cause: a follow-up's causationid ` +
        `is the id of the message that caused it (${WHERE}/envelope.ts followUp). Commands seen: ${JSON.stringify(commands)}`).toBeDefined();
      expect(command!.correlationid, `hop 1: the capture-payment command caused by order-placed ${order.id} should carry ` +
        `the order's correlation id ${order.correlationid} (${WHERE}/envelope.ts followUp)`).toBe(order.correlationid);
      const payment = captured().find((e) => e.causationid === command!.id);
      expect(payment, `no payment-captured event named the capture-payment command ${command!.id} as its cause ` +
        `(${WHERE}/envelope.ts followUp). payment-captured events: ${JSON.stringify(captured().map((e) => ({ id: e.id, correlationid: e.correlationid, causationid: e.causationid })))}`).toBeDefined();
      expect(payment!.correlationid, `hop 2: payment-captured should still carry the correlation id of the flow, ` +
        `${order.correlationid}, and carries ${String(payment!.correlationid)}` +
        (payment!.correlationid === command!.id ? ', the id of its parent command' : '') +
        '. A follow-up copies its parent\'s correlationid; the parent\'s id goes into causationid. With one hop the two ' +
        `can look alike, which is why the check follows two (${WHERE}/envelope.ts followUp)`).toBe(order.correlationid);
      expect(String(payment!.type), 'payment-captured is a fact: past tense, versioned').toMatch(PAST_TENSE_FACT);
    }
  });

  test('a handler that throws or rejects gets the message once more, then it is parked with the error, and the messages behind it flow', async ({ rabbit, unique }) => {
    const shop = new Shop(rabbit, unique);
    const attempts = new Map<string, number>();
    const handled: string[] = [];
    const { channel, queue } = await shop.subscriber('billing', {
      [ORDER_PLACED]: (event) => {
        const { orderId } = event.data;
        attempts.set(orderId, (attempts.get(orderId) ?? 0) + 1);
        // A synchronous throw, before any promise exists.
        if (orderId.startsWith('o-throws')) throw new Error('card network down');
        return (async () => {
          await sleep(20);
          if (orderId.startsWith('o-rejects')) throw new Error('ledger timed out');
          handled.push(orderId);
        })();
      },
    });
    const throws = orderV3('o-throws');
    const rejects = orderV3('o-rejects');
    const fine = [orderV3('o-fine-1'), orderV3('o-fine-2')];
    await shop.publishRaw([throws, rejects, ...fine].map((order) => ({ body: cloudEvent(TYPE.v3, order), routingKey: TYPE.v3 })));

    await shop.until(() => fine.every((o) => handled.includes(o.orderId)), () => 'two events whose handler fails were followed ' +
      `by two that succeed, and these were handled: ${JSON.stringify(handled)}. A failing handler must not stop the ` +
      `messages behind it (${WHERE}/consumer.ts).${shop.logTail()}`);
    const looping = (): string | undefined => {
      const [orderId, runs] = [...attempts].find(([, n]) => n > 2) ?? [];
      return orderId && `the handler for ${orderId} has run ${runs} times and counting: a message whose handler ` +
        'keeps failing loops when it is requeued every time. Requeue it once (when it was not redelivered), then park ' +
        `it (${WHERE}/consumer.ts)`;
    };
    await shop.until(async () => {
      const loop = looping();
      if (loop) throw new Error(loop);
      return ((await rabbit.readyMessages(parkedQueue(queue))) ?? 0) >= 2;
    }, () => looping() ?? `two events failed in their handler; after their retries both should be parked in ` +
      `"${parkedQueue(queue)}", with the error as the reason. Handler runs: ${JSON.stringify(Object.fromEntries(attempts))} ` +
      `(${WHERE}/consumer.ts).${shop.logTail()}`);
    const parked = await shop.parked(queue, 2, 'two events failed in their handler twice');
    for (const [order, error] of [[throws, 'card network down'], [rejects, 'ledger timed out']] as const) {
      expect(attempts.get(order.orderId), `the handler for ${order.orderId} ran ${attempts.get(order.orderId)} times. Retry a ` +
        'failed message once (nack with requeue when it was not redelivered), then park it: no more, or it loops; no ' +
        `less, or a passing glitch parks it (${WHERE}/consumer.ts)`).toBe(2);
      expect(parked.map((p) => p.reason).some((reason) => reason.includes(error)), `the parked reason should carry the ` +
        `handler's error, "${error}" (${WHERE}/consumer.ts)`).toBe(true);
    }
    await sleep(100); // a looping message would be handled again by now
    expect([attempts.get(throws.orderId), attempts.get(rejects.orderId)], `parked messages must not come back (${WHERE}/consumer.ts)`).toEqual([2, 2]);
    await closeConsumerChannel(channel);
    expect(await rabbit.readyMessages(queue), `every message should be settled: acked, or parked and acked (${WHERE}/consumer.ts)`).toBe(0);
  });

  test('a payments instance killed mid-capture leaves the command to the other instance, which captures it once', async ({ rabbit, unique, procs }) => {
    const shop = new Shop(rabbit, unique);
    const tap = await shop.tap();
    // payments-a takes a minute per capture: it is still busy when it is killed.
    const slow = await startService(procs, shop, 'payments', 'payments-a', { CAPTURE_MS: '60000' });
    const command = cloudEvent(TYPE.capture, { orderId: `o-crash-${randomUUID().slice(0, 8)}`, total: { amountMinor: 4250, currency: 'EUR' } }, { source: '/billing' });
    const orderId = (command.data as { orderId: string }).orderId;
    const channel = await rabbit.confirmChannel();
    channel.sendToQueue(shop.paymentsQueue, Buffer.from(JSON.stringify(command)), { persistent: true, contentType: CLOUDEVENTS_JSON });
    await channel.waitForConfirms();
    await slow.waitForOutput(new RegExp(`capturing \\S+ id=${String(command.id)} `), `started capturing the payment for ${orderId}`);

    const fast = await startService(procs, shop, 'payments', 'payments-b', { CAPTURE_MS: '10' });
    await slow.kill('SIGKILL');
    const done = await fast.waitForOutput(new RegExp(`captured order ${orderId};`), `captured the payment for ${orderId}, ` +
      'which payments-a was capturing when it was killed. A command is acknowledged only after its handler has ' +
      `finished, so the broker gives it to the other instance (${WHERE}/consumer.ts)`, 10_000);
    expect(done).toBeTruthy();
    expect(fast.output(), `payments-b should receive the command flagged redelivered (${WHERE}/consumer.ts)`).toMatch(new RegExp(`capturing \\S+ id=${String(command.id)} .*redelivered=true`));
    const published = bodies(await rabbit.drain(tap)).filter((e) => e.type === TYPE.captured);
    expect(published.map((e) => (e.data as { orderId?: string }).orderId), 'the payment should be captured, and announced, exactly once').toEqual([orderId]);
    expect(await rabbit.readyMessages(shop.paymentsQueue), 'the command was run, so its queue should be empty').toBe(0);
  });
});
