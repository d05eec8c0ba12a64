import { gradedFolder } from './support/lesson.ts';
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from './support/fixtures.ts';
import { orderHeaders, type OrderEvent } from '@lesson/06-rabbitmq-routing/orders.ts';
import { OrderEventPublisher } from '@lesson/06-rabbitmq-routing/publisher.ts';
import { declareOrderRouting, type RoutingNames } from '@lesson/06-rabbitmq-routing/routing.ts';
import { HEADERS_BINDINGS, TOPIC_BINDINGS, type Subscriber } from '@lesson/06-rabbitmq-routing/subscribers.ts';
import { uniqueName } from './support/names.ts';
import { CLASSIC_QUEUE, messageIds, type RabbitScope } from './support/rabbitmq.ts';

const SLUG = '06-rabbitmq-routing';
const WHERE = gradedFolder(SLUG);
/** The one key the publisher checks' direct exchange routes. */
const ROUTED_KEY = 'order.paid';
const SUBSCRIBERS: Subscriber[] = ['billing', 'shipping', 'euWarehouse', 'standardDesk', 'expressDesk', 'audit', 'euExpress', 'riskReview'];

/** Topic routing keys the checks publish, and who should receive each. */
const TOPIC_KEYS = [
  'order.placed.eu',
  'order.placed.eu.express',
  'order.placed.us',
  'order.placed.us.express',
  'order.shipped.eu',
  'order.shipped.us.express',
  'payment.failed.eu',
];

/** Headers the checks publish, by a name for each message. */
const HEADER_MESSAGES: Record<string, Record<string, string>> = {
  'eu-express-card-low': { kind: 'placed', region: 'eu', tier: 'express', payment: 'card', risk: 'low' },
  'eu-standard-invoice-low': { kind: 'placed', region: 'eu', tier: 'standard', payment: 'invoice', risk: 'low' },
  'us-express-card-high': { kind: 'placed', region: 'us', tier: 'express', payment: 'card', risk: 'high' },
  'eu-express-invoice-high': { kind: 'placed', region: 'eu', tier: 'express', payment: 'invoice', risk: 'high' },
  'us-standard-card-low': { kind: 'placed', region: 'us', tier: 'standard', payment: 'card', risk: 'low' },
};

const WILDCARDS_NEED_TOPIC =
  'Any other exchange type accepts a binding like order.placed.* but reads * and # as plain characters, so no order event matches.';
const MATCHING_NEEDS_HEADERS =
  "Only a headers exchange reads a binding's x-match arguments; the others route by routing key, and these messages carry a meaningless one.";

function orderEvent(): OrderEvent {
  return {
    eventId: randomUUID(),
    orderId: `ord-${randomUUID().slice(0, 8)}`,
    kind: 'placed',
    region: 'eu',
    tier: 'standard',
    payment: 'card',
    risk: 'low',
    totalCents: 12_500,
    occurredAt: new Date().toISOString(),
  };
}

describe('06 rabbitmq-routing', () => {

  /** Declares the learner's routing under fresh names, all registered for deletion. */
  async function routing(rabbit: RabbitScope): Promise<RoutingNames> {
    const names: RoutingNames = {
      kindExchange: rabbit.exchange(uniqueName('orders-kind')),
      topicExchange: rabbit.exchange(uniqueName('orders-topic')),
      headersExchange: rabbit.exchange(uniqueName('orders-headers')),
      queues: Object.fromEntries(SUBSCRIBERS.map((s) => [s, rabbit.queue(uniqueName(`orders-${s}`))])) as Record<Subscriber, string>,
    };
    await declareOrderRouting(await rabbit.channel(), names);
    return names;
  }

  /** Publishes one message per routing key (its id is the key) and waits until the broker has routed all. */
  async function publishKeys(rabbit: RabbitScope, exchange: string, keys: readonly string[]): Promise<void> {
    const channel = await rabbit.confirmChannel();
    for (const key of keys) channel.publish(exchange, key, Buffer.from('{}'), { messageId: key, contentType: 'application/json' });
    await channel.waitForConfirms();
  }

  /** What a subscriber's queue holds, by message id. */
  async function received(rabbit: RabbitScope, names: RoutingNames, subscriber: Subscriber): Promise<string[]> {
    return messageIds(await rabbit.drain(names.queues[subscriber])).sort();
  }

  /** A hint when the exchange was declared with another type than the requirement needs. */
  async function typeHint(rabbit: RabbitScope, exchange: string, type: string): Promise<string> {
    const mismatch = await rabbit.exchangeMismatch(exchange, type, { durable: true });
    return mismatch ? ` The exchange is not a durable ${type} exchange (the broker says: ${mismatch}); see ${WHERE}/routing.ts.` : '';
  }

  /** Wildcards and header matching exist only on their own exchange types: check that first. */
  async function expectExchangeType(rabbit: RabbitScope, exchange: string, type: 'topic' | 'headers', why: string): Promise<void> {
    const mismatch = await rabbit.exchangeMismatch(exchange, type, { durable: true });
    expect(mismatch, `"${exchange}" should be a durable ${type} exchange, but the broker says: ${mismatch}. ${why} ` +
      `Declare it with channel.assertExchange(name, '${type}', { durable: true }) (${WHERE}/routing.ts).`).toBeUndefined();
  }

  it('the broker keeps the three exchanges durable, each of its type, and every subscriber\'s queue durable', async ({ rabbit, expect }) => {
    const names = await routing(rabbit);
    const exchanges = [[names.kindExchange, 'direct'], [names.topicExchange, 'topic'], [names.headersExchange, 'headers']] as const;
    for (const [exchange, type] of exchanges) {
      const mismatch = await rabbit.exchangeMismatch(exchange, type, { durable: true });
      expect(mismatch, `after declareOrderRouting, the broker's "${exchange}" is not a durable ${type} exchange: ${mismatch}. ` +
        'An exchange that is not durable is gone after a broker restart, with every binding on it, and publishes to it ' +
        `fail until some service declares it again (${WHERE}/routing.ts)`).toBeUndefined();
    }
    for (const subscriber of SUBSCRIBERS) {
      const queue = names.queues[subscriber];
      const mismatch = await rabbit.queueMismatch(queue, { durable: true, arguments: CLASSIC_QUEUE });
      expect(mismatch, `after declareOrderRouting, ${subscriber}'s queue "${queue}" is not a durable classic queue, ` +
        `asked from another connection: ${mismatch}. A queue that is not durable loses its orders, and itself, when ` +
        `the broker restarts (${WHERE}/routing.ts)`).toBeUndefined();
    }
  });

  it('a direct exchange delivers only on an exact routing key match', async ({ rabbit }) => {
    const names = await routing(rabbit);
    await publishKeys(rabbit, names.kindExchange, ['order.placed', 'order.paid', 'order.refunded', 'order.paid.eu', 'order.*', 'ORDER.PAID']);
    const billing = await received(rabbit, names, 'billing');
    const shipping = await received(rabbit, names, 'shipping');
    const expectedBilling = ['order.paid', 'order.refunded'];
    const expectedShipping = ['order.paid'];

    const hint = billing.join() === expectedBilling.join() && shipping.join() === expectedShipping.join()
      ? '' : await typeHint(rabbit, names.kindExchange, 'direct');
    expect(billing, `billing should receive exactly ${JSON.stringify(expectedBilling)} from the direct exchange, and ` +
      `received ${JSON.stringify(billing)}. A direct exchange compares the whole routing key, character for character: ` +
      `no patterns, no prefixes, case-sensitive. Check KIND_BINDINGS (${WHERE}/subscribers.ts) and the exchange type ` +
      `(${WHERE}/routing.ts).${hint}`).toEqual(expectedBilling);
    expect(shipping, `shipping should receive exactly ${JSON.stringify(expectedShipping)}, and received ` +
      `${JSON.stringify(shipping)} (${WHERE}/subscribers.ts, routing.ts).${hint}`).toEqual(expectedShipping);
  });

  it('in a topic binding, * matches exactly one word', async ({ rabbit }) => {
    const names = await routing(rabbit);
    await expectExchangeType(rabbit, names.topicExchange, 'topic', WILDCARDS_NEED_TOPIC);
    await publishKeys(rabbit, names.topicExchange, TOPIC_KEYS);
    const standard = await received(rabbit, names, 'standardDesk');
    const express = await received(rabbit, names, 'expressDesk');
    const expectedStandard = ['order.placed.eu', 'order.placed.us'];
    const expectedExpress = ['order.placed.eu.express', 'order.placed.us.express'];

    expect(standard, `the standard desk (bound with "${TOPIC_BINDINGS.standardDesk}") should get placed orders of ` +
      `exactly one more word, the region: ${JSON.stringify(expectedStandard)}. It received ${JSON.stringify(standard)}. ` +
      '`*` matches exactly one word, so order.placed.* stops at the region; `#` would also take the express orders, ' +
      `which have a fourth word (${WHERE}/subscribers.ts).`).toEqual(expectedStandard);
    expect(express, `the express desk (bound with "${TOPIC_BINDINGS.expressDesk}") should get ` +
      `${JSON.stringify(expectedExpress)}, and received ${JSON.stringify(express)}. Use \`*\` for the one word that ` +
      `varies, the region (${WHERE}/subscribers.ts).`).toEqual(expectedExpress);
  });

  it('in a topic binding, # matches zero or more words', async ({ rabbit }) => {
    const names = await routing(rabbit);
    await expectExchangeType(rabbit, names.topicExchange, 'topic', WILDCARDS_NEED_TOPIC);
    await publishKeys(rabbit, names.topicExchange, TOPIC_KEYS);
    const warehouse = await received(rabbit, names, 'euWarehouse');
    const audit = await received(rabbit, names, 'audit');
    const expectedWarehouse = ['order.placed.eu', 'order.placed.eu.express'];
    const expectedAudit = TOPIC_KEYS.filter((key) => key.startsWith('order.')).sort();

    expect(warehouse, `the EU warehouse (bound with "${TOPIC_BINDINGS.euWarehouse}") should get every order placed ` +
      `in the EU, standard or express: ${JSON.stringify(expectedWarehouse)}. It received ${JSON.stringify(warehouse)}. ` +
      '`#` matches zero or more words, so order.placed.eu.# takes order.placed.eu itself as well as ' +
      `order.placed.eu.express; \`*\` needs exactly one word after eu (${WHERE}/subscribers.ts).`).toEqual(expectedWarehouse);
    expect(audit, `audit (bound with "${TOPIC_BINDINGS.audit}") should get every order event, however many words ` +
      `follow "order": ${JSON.stringify(expectedAudit)}. It received ${JSON.stringify(audit)} ` +
      `(${WHERE}/subscribers.ts).`).toEqual(expectedAudit);
  });

  async function publishHeaders(rabbit: RabbitScope, names: RoutingNames): Promise<void> {
    const channel = await rabbit.confirmChannel();
    for (const [id, headers] of Object.entries(HEADER_MESSAGES)) {
      // The routing key is deliberately meaningless: a headers exchange ignores it.
      channel.publish(names.headersExchange, 'ignored', Buffer.from('{}'), { messageId: id, headers, contentType: 'application/json' });
    }
    await channel.waitForConfirms();
  }

  it('a headers binding with x-match all needs every listed header to match', async ({ rabbit }) => {
    const names = await routing(rabbit);
    await expectExchangeType(rabbit, names.headersExchange, 'headers', MATCHING_NEEDS_HEADERS);
    await publishHeaders(rabbit, names);
    const euExpress = await received(rabbit, names, 'euExpress');
    const expected = ['eu-express-card-low', 'eu-express-invoice-high'];
    expect(euExpress, `euExpress (bound with ${JSON.stringify(HEADERS_BINDINGS.euExpress)}) should get the orders ` +
      `whose headers say region=eu AND tier=express: ${JSON.stringify(expected)}. It received ` +
      `${JSON.stringify(euExpress)}. With 'x-match': 'all' every listed header must be present with that exact ` +
      `value (${WHERE}/subscribers.ts).`).toEqual(expected);
  });

  it('a headers binding with x-match any needs one listed header to match', async ({ rabbit }) => {
    const names = await routing(rabbit);
    await expectExchangeType(rabbit, names.headersExchange, 'headers', MATCHING_NEEDS_HEADERS);
    await publishHeaders(rabbit, names);
    const review = await received(rabbit, names, 'riskReview');
    const expected = ['eu-express-invoice-high', 'eu-standard-invoice-low', 'us-express-card-high'];
    expect(review, `riskReview (bound with ${JSON.stringify(HEADERS_BINDINGS.riskReview)}) should get the orders ` +
      `paid by invoice OR rated high-risk: ${JSON.stringify(expected)}. It received ${JSON.stringify(review)}. ` +
      `With 'x-match': 'any' one matching header is enough; 'all' (the default) needs every one ` +
      `(${WHERE}/subscribers.ts).`).toEqual(expected);
  });

  /**
   * The check's own exchanges and queue for the publisher's requirements, so that they grade
   * publisher.ts alone: a direct exchange where only order.paid is bound, and a headers exchange
   * that takes EU express orders.
   */
  async function probeRouting(rabbit: RabbitScope) {
    const channel = await rabbit.channel();
    const direct = rabbit.exchange(uniqueName('orders-probe-direct'));
    const headers = rabbit.exchange(uniqueName('orders-probe-headers'));
    const queue = rabbit.queue(uniqueName('orders-probe'));
    await channel.assertExchange(direct, 'direct', { durable: true });
    await channel.assertExchange(headers, 'headers', { durable: true });
    await channel.assertQueue(queue, { durable: true, arguments: CLASSIC_QUEUE });
    await channel.bindQueue(queue, direct, ROUTED_KEY);
    await channel.bindQueue(queue, headers, '', { 'x-match': 'all', region: 'eu', tier: 'express' });
    return { direct, headers, queue };
  }

  it('publish() sends the event as a persistent JSON message carrying its headers', async ({ rabbit }) => {
    const probe = await probeRouting(rabbit);
    const publisher = new OrderEventPublisher(await rabbit.confirmChannel());
    const event: OrderEvent = { ...orderEvent(), tier: 'express' };

    const outcome = await publisher.publish(probe.headers, '', event, orderHeaders(event));
    const [message, ...more] = await rabbit.drain(probe.queue);
    expect(message, `publish(headersExchange, '', event, orderHeaders(event)) for an EU express order reached no ` +
      `queue, although a headers binding { 'x-match': 'all', region: 'eu', tier: 'express' } waits for it (publish() ` +
      `said '${outcome}'). A headers exchange reads only the message's headers: pass the headers argument as the ` +
      `headers option of channel.publish (${WHERE}/publisher.ts).`).toBeDefined();
    expect(more.length, `one publish() call put ${more.length + 1} messages in the queue (${WHERE}/publisher.ts)`).toBe(0);
    expect(outcome, `the message was queued, yet publish() said '${outcome}' (${WHERE}/publisher.ts)`).toBe('routed');
    expect(message!.properties.deliveryMode, 'order events should be persistent (delivery mode 2), so a durable ' +
      `queue keeps them across a broker restart: pass { persistent: true } (${WHERE}/publisher.ts)`).toBe(2);
    expect(message!.properties.contentType, `set { contentType: 'application/json' } (${WHERE}/publisher.ts)`).toBe('application/json');
    expect(JSON.parse(message!.content.toString('utf8')), `the body should be the event as JSON: encodeOrderEvent(event) ` +
      `(${WHERE}/publisher.ts)`).toEqual(event);
    expect(typeof message!.properties.messageId === 'string' && message!.properties.messageId !== '', 'every message ' +
      `should carry a messageId of its own, to pair a returned message with its publish (${WHERE}/publisher.ts)`).toBe(true);
  });

  it('an unroutable message is detected with the mandatory flag instead of being silently dropped', async ({ rabbit }) => {
    const probe = await probeRouting(rabbit);
    const publisher = new OrderEventPublisher(await rabbit.confirmChannel());

    const routed = await publisher.publish(probe.direct, ROUTED_KEY, orderEvent());
    expect(routed, `a queue is bound to ${ROUTED_KEY} on the direct exchange, so publish() should resolve 'routed' ` +
      `(${WHERE}/publisher.ts)`).toBe('routed');

    const noSubscriber = await publisher.publish(probe.direct, 'order.placed', orderEvent());
    expect(noSubscriber, 'nobody is bound to order.placed on the direct exchange, so RabbitMQ discarded that ' +
      `message and publish() still said '${noSubscriber}'. Publish with { mandatory: true } and listen for the ` +
      "channel's 'return' event: the broker returns an unroutable mandatory message before it confirms it, so " +
      `once the confirm arrives you know (${WHERE}/publisher.ts)`).toBe('unroutable');

    const routedAgain = await publisher.publish(probe.direct, ROUTED_KEY, orderEvent());
    expect(routedAgain, 'after an unroutable message, the next routable one should be reported routed: pair each ' +
      `returned message with its own publish, e.g. by messageId (${WHERE}/publisher.ts)`).toBe('routed');

    const queued = await rabbit.drain(probe.queue);
    expect(queued.length, `the two ${ROUTED_KEY} events should be in the queue bound to it; it held ${queued.length} ` +
      `(${WHERE}/publisher.ts)`).toBe(2);
  });

  it('concurrent publishes each get their own outcome: a returned message is matched to the publish it belongs to', async ({ rabbit }) => {
    const probe = await probeRouting(rabbit);
    const publisher = new OrderEventPublisher(await rabbit.confirmChannel());
    // Precondition: one publish at a time already tells the two apart (the requirement above).
    const alone = await publisher.publish(probe.direct, 'order.placed', orderEvent());
    expect(alone, `even one publish at a time, an unroutable message is reported '${alone}': see the mandatory ` +
      `flag requirement (${WHERE}/publisher.ts)`).toBe('unroutable');

    // Routable and unroutable publishes interleaved, all in flight at once on one channel.
    const pattern = ['routed', 'unroutable', 'unroutable', 'routed', 'unroutable', 'routed', 'routed', 'unroutable', 'routed', 'unroutable'] as const;
    const keys = pattern.map((expected, i) => (expected === 'routed' ? ROUTED_KEY : `order.unknown-${i}`));
    const outcomes = await Promise.all(keys.map((key) => publisher.publish(probe.direct, key, orderEvent())));

    const wrong = outcomes.flatMap((outcome, i) => (outcome === pattern[i] ? [] : [`publish #${i + 1} (${keys[i]}) said '${outcome}', not '${pattern[i]}'`]));
    expect(wrong, `${keys.length} publishes were in flight at once on one channel, some routable and some not, and ` +
      `${wrong.length} callers got another call's outcome: ${wrong.join('; ')}. State shared by all calls (one ` +
      "'returned' flag, a 'return' listener per call that takes whichever message comes back) mixes them up. " +
      `Remember the messageId of every returned message and let each publish look up its own (${WHERE}/publisher.ts).`)
      .toEqual([]);
    expect((await rabbit.drain(probe.queue)).length, `the ${pattern.filter((p) => p === 'routed').length} routable ` +
      `publishes should each be queued once (${WHERE}/publisher.ts)`).toBe(pattern.filter((p) => p === 'routed').length);
  });
});
