import { randomUUID } from 'node:crypto';
import type { GetMessage } from 'amqplib';
import type pg from 'pg';
import type { NewOrder } from '@lesson/14-transactional-outbox/events.ts';
import { cancelOrder, placeOrder } from '@lesson/14-transactional-outbox/orders.ts';
import { startRelay, type Relay, type RelayOptions } from '@lesson/14-transactional-outbox/outbox-relay.ts';
import { locationInGradedCode, todoMessage } from '../tooling/course/todo.ts';
import { describe, test, vi } from './support/fixtures.ts';
import { gradedFolder } from './support/lesson.ts';
import { sqlState, type PgTestKit } from './support/postgres.ts';
import type { LessonProcess } from './support/processes.ts';
import { eventually } from './support/polling.ts';
import { brokerReason, CLASSIC_QUEUE, RabbitScope } from './support/rabbitmq.ts';
import { serviceUrl } from './support/services.ts';
import { TcpProxy } from './support/tcp-proxy.ts';

const SLUG = '14-transactional-outbox';
const WHERE = gradedFolder(SLUG);

/**
 * The file each TODO of the starter is in, for a TODO the check sees only by its message (in a log
 * line or a response, often without a stack); for any other TODO, the stack printed after it.
 */
const TODO_FILES: Record<string, string> = {
  cancelOrder: 'orders.ts',
  inTransaction: 'orders.ts',
  placeOrder: 'orders.ts',
  claimBatch: 'outbox.ts',
  markSent: 'outbox.ts',
  publishConfirmed: 'publisher.ts',
  relayBatch: 'outbox-relay.ts',
};

/** "TODO: name (where it is)", as the runner reports an unwritten TODO. */
function todoError(name: string, text: string): Error {
  const file = TODO_FILES[name];
  return new Error(todoMessage(name, file ? `${WHERE}/${file}` : locationInGradedCode(text)));
}
const ORDERS = `${WHERE}/orders.ts`;
const CLAIM = `${WHERE}/outbox.ts`;
const PUBLISHER = `${WHERE}/publisher.ts`;
const RELAY = `${WHERE}/outbox-relay.ts`;

/**
 * Relay settings for checks: fast polls and short backoffs. The timeouts stay generous (a busy
 * machine can be slow to confirm); the requirement about a silent broker sets a short one itself.
 */
const FAST = {
  pollIntervalMs: 25,
  publishTimeoutMs: 5_000,
  connectTimeoutMs: 2_000,
  backoff: { initialMs: 25, maxMs: 250 },
} as const;

/** The same settings for relay.ts, as environment variables. */
const FAST_ENV = {
  RELAY_POLL_MS: '25',
  RELAY_PUBLISH_TIMEOUT_MS: '5000',
  RELAY_CONNECT_TIMEOUT_MS: '2000',
  RELAY_BACKOFF_INITIAL_MS: '25',
  RELAY_BACKOFF_MAX_MS: '250',
};

/** Whether a relay logged a failed round: then it may rightly have published some events twice. */
const hadFailedRound = (log: readonly string[]) => log.some((line) => line.includes('round failed'));

function newOrder(customerId = 'grace'): NewOrder {
  return {
    orderId: randomUUID(),
    customerId,
    items: [
      { sku: 'tea-earl-grey', quantity: 2, unitPriceCents: 450 },
      { sku: 'mug', quantity: 1, unitPriceCents: 1200 },
    ],
  };
}

const short = (id: string) => id.slice(0, 8);

// ---------------------------------------------------------------------------------------------
// The check's own view of the outbox, through SQL: so relay requirements do not depend on orders.ts.

interface StoredEvent {
  id: number;
  eventId: string;
  aggregateId: string;
  sequence: number;
  type: string;
  payload: Record<string, unknown>;
}

type Queryable = Pick<pg.ClientBase, 'query'>;

/**
 * Writes pending events to the outbox as an order service would: for each aggregate, sequence
 * `from` to `to`. With `interleave`, one event of each aggregate in turn (ids alternate between
 * aggregates); otherwise each aggregate's events one after the other.
 */
async function insertEvents(db: Queryable, aggregates: readonly string[], from: number, to: number, interleave = true): Promise<StoredEvent[]> {
  const plan: Array<{ aggregateId: string; sequence: number }> = [];
  if (interleave) {
    for (let sequence = from; sequence <= to; sequence++) for (const aggregateId of aggregates) plan.push({ aggregateId, sequence });
  } else {
    for (const aggregateId of aggregates) for (let sequence = from; sequence <= to; sequence++) plan.push({ aggregateId, sequence });
  }
  const stored: StoredEvent[] = [];
  for (const { aggregateId, sequence } of plan) {
    const type = sequence === 1 ? 'order.placed' : 'order.changed';
    const payload = { orderId: aggregateId, change: sequence };
    const { rows } = await db.query<{ id: string }>(
      `INSERT INTO outbox (event_id, aggregate_type, aggregate_id, sequence, event_type, payload)
       VALUES ($1, 'order', $2, $3, $4, $5) RETURNING id`,
      [randomUUID(), aggregateId, sequence, type, JSON.stringify(payload)],
    );
    stored.push({ id: Number(rows[0]!.id), eventId: '', aggregateId, sequence, type, payload });
  }
  const ids = await db.query<{ id: string; event_id: string }>('SELECT id, event_id FROM outbox WHERE id = ANY($1::bigint[])', [stored.map((e) => e.id)]);
  const eventIds = new Map(ids.rows.map((row) => [Number(row.id), row.event_id]));
  for (const event of stored) event.eventId = eventIds.get(event.id) ?? '';
  return stored;
}

function aggregates(count: number): string[] {
  return Array.from({ length: count }, () => randomUUID());
}

async function pendingEventIds(pg: PgTestKit, eventIds: readonly string[]): Promise<string[]> {
  const rows = await pg.query<{ event_id: string }>('SELECT event_id FROM outbox WHERE sent_at IS NULL AND event_id = ANY($1::uuid[])', [eventIds]);
  return rows.map((row) => row.event_id);
}

// ---------------------------------------------------------------------------------------------
// The broker side: an exchange and a queue the check declares, and what arrived in it.

/** The exchange the relay publishes to, and a durable queue of the check's bound to all of it. */
async function eventQueue(scope: RabbitScope, exchange: string, queue: string, args: Record<string, unknown> = {}): Promise<string> {
  scope.exchange(exchange);
  scope.queue(queue);
  const channel = await scope.channel();
  await channel.assertExchange(exchange, 'topic', { durable: true });
  await channel.assertQueue(queue, { durable: true, arguments: { ...CLASSIC_QUEUE, ...args } });
  await channel.bindQueue(queue, exchange, '#');
  await channel.close();
  return queue;
}

interface Delivery {
  messageId: string;
  eventId: string;
  aggregateId: string;
  sequence: number;
  type: string;
  body: string;
  message: GetMessage;
}

function toDelivery(message: GetMessage): Delivery {
  const body = message.content.toString('utf8');
  let parsed: { eventId?: unknown; aggregateId?: unknown; sequence?: unknown; type?: unknown } = {};
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    // Left empty: the requirement reports the body.
  }
  return {
    messageId: String(message.properties.messageId ?? ''),
    eventId: String(parsed.eventId ?? ''),
    aggregateId: String(parsed.aggregateId ?? ''),
    sequence: Number(parsed.sequence),
    type: String(parsed.type ?? ''),
    body,
    message,
  };
}

/** Keeps what a queue delivers across several reads: the check's record of what the broker got. */
class Arrivals {
  readonly all: Delivery[] = [];

  constructor(private readonly scope: RabbitScope, private readonly queue: string) {}

  /** Takes whatever is in the queue now. */
  async take(): Promise<Delivery[]> {
    const fresh = (await this.scope.drain(this.queue)).map(toDelivery);
    this.all.push(...fresh);
    return this.all;
  }

  /**
   * Takes messages until at least `count` have arrived in all, or 5 s have passed. Fewer is for
   * the caller to judge; a queue that could not be read at all is the check's problem, said as such.
   */
  async until(count: number): Promise<Delivery[]> {
    // A read that failed may have taken messages with it (they are taken without acks).
    let failure: unknown;
    await eventually(async () => {
      try {
        await this.take();
      } catch (error) {
        failure ??= error;
      }
      return this.all.length >= count;
    });
    if (failure !== undefined && this.all.length < count) {
      throw new Error(`the check could not read its queue "${this.queue}" (${brokerReason(failure)}), so what the relay published is unknown`);
    }
    return this.all;
  }

  eventIds(): Set<string> {
    return new Set(this.all.map((d) => d.eventId));
  }
}

/**
 * What is wrong with the order in which events first arrived: per aggregate, the first copy of each
 * event must come in sequence, 1, 2, 3..., with nothing overtaking and nothing missing in between.
 */
function sequenceProblems(deliveries: readonly Delivery[]): string[] {
  const seen = new Set<string>();
  const last = new Map<string, number>();
  const problems: string[] = [];
  for (const delivery of deliveries) {
    if (seen.has(delivery.eventId)) continue;
    seen.add(delivery.eventId);
    const previous = last.get(delivery.aggregateId) ?? 0;
    if (delivery.sequence !== previous + 1) {
      problems.push(`order ${short(delivery.aggregateId)}: #${delivery.sequence} arrived ${previous === 0 ? 'first' : `right after #${previous}`}`);
    }
    last.set(delivery.aggregateId, Math.max(previous, delivery.sequence));
  }
  return problems;
}

function summarize(problems: readonly string[], max = 5): string {
  return problems.slice(0, max).join('; ') + (problems.length > max ? `; and ${problems.length - max} more` : '');
}

/**
 * The other half of at-least-once delivery, as lesson 11 builds it: a consumer that records the id
 * of each event it applies in the same transaction as the effect (an order's history), so applying
 * a repeat changes nothing. It takes every message in the queue, acknowledging each after its commit.
 */
async function consumeIdempotently(pg: PgTestKit, scope: RabbitScope, queue: string): Promise<{ deliveries: Delivery[]; applied: Delivery[] }> {
  await pg.query('CREATE TABLE IF NOT EXISTS check_processed_events (event_id uuid PRIMARY KEY)');
  await pg.query(
    `CREATE TABLE IF NOT EXISTS check_order_history (
       aggregate_id text NOT NULL, sequence integer NOT NULL, event_id uuid NOT NULL, PRIMARY KEY (aggregate_id, sequence))`,
  );
  const pool = await pg.pool();
  const channel = await scope.channel();
  const deliveries: Delivery[] = [];
  const applied: Delivery[] = [];
  try {
    for (;;) {
      const message = await channel.get(queue, { noAck: false });
      if (message === false) break;
      const delivery = toDelivery(message);
      deliveries.push(delivery);
      // One statement, so one transaction: the processed-event row and the effect commit together.
      const { rowCount } = await pool.query(
        `WITH fresh AS (
           INSERT INTO check_processed_events (event_id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING event_id
         )
         INSERT INTO check_order_history (aggregate_id, sequence, event_id) SELECT $2, $3, event_id FROM fresh`,
        [delivery.eventId, delivery.aggregateId, delivery.sequence],
      ).catch((error: unknown) => {
        throw new Error(`the check's idempotent consumer could not apply ${delivery.body.slice(0, 200)}: ${String(error)}`);
      });
      if (rowCount === 1) applied.push(delivery);
      channel.ack(message);
    }
  } finally {
    await channel.close().catch(() => {});
  }
  return { deliveries, applied };
}

// ---------------------------------------------------------------------------------------------
// Relays: in this process (startRelay) or as processes (relay.ts).

interface RunningRelay {
  relay: Relay;
  log: string[];
}

/** Starts the learner's relay in this process; it is stopped after the test. */
function relayFor(
  pool: pg.Pool,
  options: Omit<RelayOptions, 'pool'>,
  onTestFinished: (fn: () => Promise<void>) => void,
  beforeStop?: () => Promise<void>,
): RunningRelay {
  const log: string[] = [];
  const relay = startRelay({ ...FAST, ...options, pool, log: (line) => log.push(line) });
  onTestFinished(async () => {
    // A proxy in front of the broker is closed first: that ends a relay stuck on a silent
    // connection, so stop() can return.
    await beforeStop?.();
    await Promise.race([relay.stop(), new Promise((resolve) => setTimeout(resolve, 5_000))]);
  });
  return { relay, log };
}

function logTail(log: readonly string[], lines = 12): string {
  return log.length === 0 ? '  (nothing)' : log.slice(-lines).map((line) => `  ${line}`).join('\n');
}

/** A TODO still in the code shows up in a log or an error: the requirement reports it as "not written yet". */
function todoIn(text: readonly string[] | string): Error | undefined {
  const joined = typeof text === 'string' ? text : text.join('\n');
  const todo = /\bTODO: ([\w.]+)/.exec(joined);
  return todo ? todoError(todo[1]!, joined.slice(todo.index)) : undefined;
}

function throwIfTodo(text: readonly string[] | string): void {
  const todo = todoIn(text);
  if (todo) throw todo;
}

/** Waits until none of the events is pending any more; fails with the relay's log otherwise. */
async function waitUntilSent(pg: PgTestKit, events: readonly { eventId: string }[], log: () => string, hint: string, timeout = 10_000): Promise<void> {
  const ids = events.map((e) => e.eventId);
  let pending = ids.length;
  const done = await vi.waitFor(async () => {
    if (todoIn(log())) return true;
    pending = (await pendingEventIds(pg, ids)).length;
    if (pending > 0) throw new Error(`${pending} still pending`);
    return true;
  }, { timeout, interval: 25 }).catch(() => false);
  throwIfTodo(log());
  if (!done) {
    throw new Error(`${pending} of ${ids.length} events were still pending (sent_at IS NULL) after ${timeout / 1000} s: ${hint}\n` +
      `The relay logged:\n${log()}`);
  }
}

describe.concurrent('14 transactional-outbox', () => {
  // -------------------------------------------------------------------------------------------
  // Outages of a private broker of the check's own. They come first because they take longest
  // (the broker takes seconds to start again) and requirements run a few at a time.


  test('while the broker is down, orders are accepted and their events stay pending; once it is back, every one is published in sequence', async ({ pg, own, procs, unique, expect }) => {
    const [broker] = await Promise.all([own.start('rabbitmq'), pg.migrate(SLUG)]);
    const scope = new RabbitScope(() => broker.url);
    const exchange = unique('orders.events');
    const queue = await eventQueue(scope, exchange, unique('outbox-events'));
    const env = { ...pg.env, AMQP_URL: broker.url, OUTBOX_EXCHANGE: exchange, ...FAST_ENV };
    let relay: LessonProcess | undefined;
    try {
      const [service] = await Promise.all([
        procs.startHttp(SLUG, 'server.ts', { env, name: 'the order service (server.ts)' }),
        (async () => {
          relay = procs.start(SLUG, 'relay.ts', { env: { ...env, RELAY_NAME: 'relay' }, name: 'the relay (relay.ts)' });
          await relay.waitForOutput(/ready/, 'reported it was ready');
        })(),
      ]);
      const post = async (path: string, body: unknown) => {
        const started = Date.now();
        try {
          const response = await fetch(`${service.url}${path}`, {
            method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(5_000),
          });
          return { status: response.status, text: await response.text(), ms: Date.now() - started };
        } catch (error) {
          return { status: 0, text: String(error), ms: Date.now() - started };
        }
      };

      const first = newOrder();
      const placedFirst = await post('/orders', first);
      throwIfTodo(service.process.output());
      expect(placedFirst.status, `POST /orders should place an order (201), got ${placedFirst.status} ${placedFirst.text} (${ORDERS})`).toBe(201);
      const arrivals = new Arrivals(scope, queue);
      await vi.waitFor(async () => expect((await arrivals.take()).length, 'the relay should publish the first order before the outage').toBeGreaterThan(0), { timeout: 10_000, interval: 50 })
        .catch(() => { throwIfTodo(relay!.output()); throw new Error(`with the broker up, the first order's event never reached the broker (${RELAY}).\n${procs.combinedLog()}`); });

      await broker.stop();

      const during = [newOrder('ada'), newOrder('linus'), newOrder('barbara')];
      for (const order of during) {
        const placed = await post('/orders', order);
        expect(placed.status, `with the broker down, POST /orders answered ${placed.status || 'nothing'} after ${placed.ms} ms ` +
          `(${placed.text.slice(0, 200)}). Placing an order must only write to the database, the order and its event in one ` +
          `transaction; the relay publishes later (${ORDERS})`).toBe(201);
        expect(placed.ms, 'with the broker down, placing an order should not wait for the broker').toBeLessThan(5_000);
      }
      for (const order of during.slice(0, 2)) {
        const cancelled = await post(`/orders/${order.orderId}/cancel`, { reason: 'ordered by mistake' });
        expect(cancelled.status, `with the broker down, cancelling an order answered ${cancelled.status || 'nothing'} ` +
          `(${cancelled.text.slice(0, 200)}) (${ORDERS})`).toBe(200);
      }
      const outageEvents = await pg.query<{ event_id: string }>('SELECT event_id FROM outbox WHERE aggregate_id = ANY($1::text[])', [during.map((o) => o.orderId)]);
      expect(outageEvents.length, `three orders were placed and two of them cancelled during the outage: five events should be in ` +
        `the outbox, and ${outageEvents.length} are (${ORDERS})`).toBe(5);
      // The relay keeps trying: nothing may be marked sent while there is no broker to confirm it.
      const failedRounds = () => relay!.output().split('\n').filter((line) => line.includes('round failed')).length;
      const failedBefore = failedRounds();
      await vi.waitFor(() => {
        if (failedRounds() < failedBefore + 3) throw new Error('not yet');
      }, { timeout: 5_000, interval: 25 }).catch(() => {});
      const pendingDuringOutage = await pendingEventIds(pg, outageEvents.map((e) => e.event_id));
      expect(pendingDuringOutage.length, `with the broker down, ${5 - pendingDuringOutage.length} of the 5 new events were marked ` +
        `sent: no broker confirmed them (${PUBLISHER}, ${RELAY})`).toBe(5);
      expect(relay!.running, `the relay process exited during the outage: it must retry, not crash.\n${procs.combinedLog()}`).toBe(true);

      await broker.start();

      await waitUntilSent(pg, outageEvents.map((e) => ({ eventId: e.event_id })), () => relay!.output().split('\n').slice(-12).join('\n'),
        'the broker is back: after a failed round the relay must reconnect and publish the backlog. A relay round that does not ' +
        `release its database connection when a publish fails runs out of connections after a few failures (${RELAY})`, 20_000);
      await arrivals.until(1 + outageEvents.length);
      const missing = outageEvents.filter((e) => !arrivals.eventIds().has(e.event_id)).length;
      expect(missing, `${missing} events are marked sent but never reached the queue (${PUBLISHER}, ${RELAY})`).toBe(0);
      const problems = sequenceProblems(arrivals.all);
      expect(problems, `after the outage, orders' events arrived out of sequence: ${summarize(problems)} (${RELAY})`).toEqual([]);
      const cancellations = arrivals.all.filter((d) => d.type === 'order.cancelled').length;
      expect(cancellations, 'both cancellations should be published').toBeGreaterThanOrEqual(2);

      const exit = await relay!.stop();
      expect(exit.code, `relay.ts should exit with code 0 on SIGTERM (it exited ${JSON.stringify(exit)})`).toBe(0);
    } finally {
      await scope.cleanup();
    }
  });

  test('the broker killed in the middle of a relay batch loses no event: repeats carry the same event id and an idempotent consumer applies each once', async ({ pg, own, unique, expect, onTestFinished }) => {
    const [broker] = await Promise.all([own.start('rabbitmq'), pg.migrate(SLUG)]);
    const scope = new RabbitScope(() => broker.url);
    onTestFinished(() => scope.cleanup());
    const exchange = unique('orders.events');
    const queue = await eventQueue(scope, exchange, unique('outbox-events'));
    // The relay reaches the broker through a link the check can hold, so the kill lands mid-batch.
    const link = await TcpProxy.start(broker.url);
    const { log } = relayFor(await pg.pool(), {
      amqpUrl: link.url, exchange, name: 'relay', aggregatesPerBatch: 8, eventsPerAggregate: 5, publishTimeoutMs: 5_000,
    }, onTestFinished, () => link.close());

    const orders = aggregates(8);
    const before = await insertEvents(await pg.pool(), orders, 1, 2);
    await waitUntilSent(pg, before, () => logTail(log), `the relay should publish the first events (${RELAY})`);

    // Hold the relay's bytes, give it new events, and kill the broker while they are on their way.
    link.pause();
    const after = await insertEvents(await pg.pool(), orders, 3, 5);
    await vi.waitFor(() => expect(link.bytesHeld).toBeGreaterThan(0), { timeout: 5_000, interval: 10 })
      .catch(() => { throwIfTodo(log); throw new Error(`the relay did not start publishing the new events within 5 s (${RELAY}).\nThe relay logged:\n${logTail(log)}`); });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await broker.stop({ kill: true });
    await broker.start();
    // A broker killed a moment after a declaration can come back without it (RabbitMQ had not yet
    // written the binding to disk, and a publish to an exchange without it is confirmed and
    // dropped). The topology is declared again while the relay's link is still held, so this
    // requirement grades the relay and not that race.
    const again = await scope.channel(await scope.connect());
    await again.assertExchange(exchange, 'topic', { durable: true });
    await again.assertQueue(queue, { durable: true, arguments: { ...CLASSIC_QUEUE } });
    await again.bindQueue(queue, exchange, '#');
    await again.close();
    link.resume();

    const events = [...before, ...after];
    await waitUntilSent(pg, events, () => logTail(log), 'the broker is back: the relay must reconnect and publish what it had ' +
      `not been able to (${RELAY})`, 20_000);
    const { deliveries, applied } = await consumeIdempotently(pg, scope, queue);
    const arrived = new Set(deliveries.map((d) => d.eventId));
    const lost = events.filter((e) => !arrived.has(e.eventId));
    expect(lost.length, `${lost.length} events are marked sent in the outbox and never reached the broker (e.g. order ` +
      `${short(lost[0]?.aggregateId ?? '')} #${lost[0]?.sequence}): they were on their way when the broker died, and the relay ` +
      `marked them sent without its confirm. Resolve publishConfirmed only on the broker's ack (${PUBLISHER}), and mark only ` +
      `confirmed events (${RELAY})`).toBe(0);
    for (const delivery of deliveries) {
      expect(delivery.messageId, `every copy of an event must carry the event's id as its message id (${PUBLISHER})`).toBe(delivery.eventId);
    }
    const bodies = new Map<string, string>();
    for (const delivery of deliveries) {
      const first = bodies.get(delivery.eventId) ?? delivery.body;
      bodies.set(delivery.eventId, first);
      expect(delivery.body, `a repeat of event ${delivery.eventId} differs from its first copy: a repeat must be the same ` +
        `event, from the same outbox row (${RELAY})`).toBe(first);
    }
    expect(applied.length, `the idempotent consumer received ${deliveries.length} messages for ${events.length} events and ` +
      'should have applied each event exactly once').toBe(events.length);
    const problems = sequenceProblems(applied);
    expect(problems, `after the crash, the consumer applied orders' events out of sequence: ${summarize(problems)} (${RELAY})`).toEqual([]);
  });

  // -------------------------------------------------------------------------------------------
  // The write side: the order and its event in one transaction.

  test('placing an order commits the order row and its order.placed outbox event in one transaction', async ({ pg, expect }) => {
    await pg.migrate(SLUG);
    const pool = await pg.pool();
    const order = newOrder();
    const placed = await placeOrder(pool, order);

    const [row] = await pg.query<{ customer_id: string; total_cents: number; status: string; version: number }>(
      'SELECT customer_id, total_cents, status, version FROM orders WHERE id = $1', [order.orderId]);
    expect(row, `placeOrder resolved, and there is no row in orders with id ${order.orderId} (${ORDERS})`).toBeDefined();
    expect(row, `the orders row should hold the customer and the total in cents, 2 × 450 + 1200 (${ORDERS})`)
      .toMatchObject({ customer_id: 'grace', total_cents: 2100, status: 'placed', version: 1 });

    const events = await pg.query<{ event_id: string; aggregate_type: string; aggregate_id: string; sequence: number; event_type: string; payload: unknown; sent_at: Date | null }>(
      'SELECT event_id, aggregate_type, aggregate_id, sequence, event_type, payload, sent_at FROM outbox WHERE aggregate_id = $1', [order.orderId]);
    expect(events.length, `placing order ${order.orderId} should write exactly one event to the outbox table, in the same ` +
      `transaction as the order; it wrote ${events.length}. Publishing straight to the broker instead loses the event whenever ` +
      `the broker is down or the process dies between the commit and the publish (${ORDERS})`).toBe(1);
    const [event] = events;
    expect(event, `the outbox row should be the order.placed event of aggregate "order" ${order.orderId}, sequence 1, pending ` +
      `(sent_at NULL): write it with appendEvent (${ORDERS})`).toMatchObject({
      aggregate_type: 'order', aggregate_id: order.orderId, sequence: 1, event_type: 'order.placed', sent_at: null,
    });
    expect(event!.payload, `the event's payload should describe the order: { orderId, customerId, items, totalCents } (${ORDERS})`)
      .toEqual({ orderId: order.orderId, customerId: 'grace', items: order.items, totalCents: 2100 });
    expect(placed.event.eventId, `placeOrder should resolve with the event it wrote (${ORDERS})`).toBe(event!.event_id);

    // The server's own record of which transaction wrote a row: xmin, its transaction id.
    const [xids] = await pg.query<{ order_xid: string; event_xid: string }>(
      `SELECT o.xmin::text AS order_xid, e.xmin::text AS event_xid FROM orders o JOIN outbox e ON e.aggregate_id = o.id::text WHERE o.id = $1`,
      [order.orderId]);
    expect(xids?.event_xid, `PostgreSQL says the order row was written by transaction ${xids?.order_xid} and its outbox row by ` +
      `transaction ${xids?.event_xid}: two transactions, so a crash between them leaves an order without its event (or an event ` +
      `without its order). Run BEGIN, both INSERTs and COMMIT on one client taken from the pool (pool.query() may use a different ` +
      `connection for every statement) (${ORDERS})`).toBe(xids?.order_xid);
  });

  test('an order that fails half-way leaves neither its order row nor its outbox event, and its connection goes back to the pool clean', async ({ pg, expect }) => {
    await pg.migrate(SLUG);
    // Two connections only: a connection that placeOrder keeps, or gives back mid-transaction, shows at once.
    const pool = await pg.newPoolFor({ max: 2 });
    const settle = <T>(promise: Promise<T>, what: string) => Promise.race([
      promise.then((value) => ({ value }), (error: unknown) => ({ error })),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} did not settle within 5 s on a pool of 2 ` +
        'connections: after a failure, placeOrder keeps its connection instead of giving it back to the pool. Release the ' +
        `client in a finally block (${ORDERS})`)), 5_000)),
    ]);

    // The order row fails: the check makes PostgreSQL refuse this order's row.
    const refusedOrder = newOrder();
    await pg.query(`ALTER TABLE orders ADD CONSTRAINT check_refuses_order CHECK (id <> '${refusedOrder.orderId}')`);
    // The outbox row fails: the check makes PostgreSQL refuse this order's event.
    const refusedEvent = newOrder();
    await pg.query(`ALTER TABLE outbox ADD CONSTRAINT check_refuses_event CHECK (aggregate_id <> '${refusedEvent.orderId}')`);

    for (const [order, which] of [[refusedOrder, 'its order row'], [refusedEvent, 'its outbox row']] as const) {
      for (let attempt = 1; attempt <= 2; attempt++) {
        const outcome = await settle(placeOrder(pool, order), `placeOrder (attempt ${attempt} for an order whose ${which.slice(4)} fails)`);
        expect('error' in outcome, `PostgreSQL refused ${which} and placeOrder resolved anyway: let the error propagate, so the ` +
          `caller knows the order was not placed (${ORDERS})`).toBe(true);
        const error = (outcome as { error: unknown }).error;
        throwIfTodo(String(error));
        const aborted = sqlState(error) === '25P02' ? ': the connection came back from the pool still inside the transaction that ' +
          'failed before. ROLLBACK before releasing it' : '';
        expect(sqlState(error), `placeOrder should fail with PostgreSQL's check violation (23514), not with ${String(error)}` +
          `${aborted} (${ORDERS})`).toBe('23514');
      }
      const orders = await pg.count('orders', 'id = $1', [order.orderId]);
      const events = await pg.count('outbox', 'aggregate_id = $1', [order.orderId]);
      expect({ orders, events }, `PostgreSQL refused ${which}, and ${orders} order row(s) and ${events} outbox row(s) of that order ` +
        'were left behind. Both rows must be written by one transaction, so that a failure rolls both back: on an error, ROLLBACK ' +
        `(and rethrow) (${ORDERS})`).toEqual({ orders: 0, events: 0 });
    }

    // The same two connections, after four failures, must still place an order.
    const order = newOrder();
    const outcome = await settle(placeOrder(pool, order), 'placeOrder after four failed orders');
    expect('error' in outcome ? String((outcome as { error: unknown }).error) : 'placed', 'after four failed orders, a valid order ' +
      'failed on the same pool. A connection that goes back to the pool inside its failed transaction makes the next user of it ' +
      `fail with "current transaction is aborted": ROLLBACK before releasing it (${ORDERS})`).toBe('placed');
    expect(await pg.count('outbox', 'aggregate_id = $1', [order.orderId]), 'the valid order should have its one event').toBe(1);
  });

  test('cancelling an order appends order.cancelled with the next sequence number, once, even when cancelled concurrently', async ({ pg, unique, expect }) => {
    await pg.migrate(SLUG);
    const applicationName = unique('cancel-race');
    const pool = await pg.newPoolFor({ max: 4, application_name: applicationName });
    const order = newOrder();
    await placeOrder(pool, order);

    // The check holds the order's row lock, so the four cancellations line up behind it whatever
    // they read first; then it lets them go, all at once.
    const holder = await pg.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM orders WHERE id = $1 FOR UPDATE', [order.orderId]);
    let settled = 0;
    const cancellations = Array.from({ length: 4 }, (_, i) => cancelOrder(pool, order.orderId, `changed my mind (${i})`)
      .then((outcome) => outcome.status, (error: unknown) => `threw ${String(error)}`)
      .finally(() => (settled += 1)));
    await vi.waitFor(async () => {
      const [row] = await pg.query<{ waiting: number }>(
        `SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, [applicationName]);
      if (row!.waiting + settled < 4) throw new Error(`${row!.waiting} cancellations are waiting for a lock, ${settled} finished`);
    }, { timeout: 5_000, interval: 20 }).catch(() => {});
    await holder.query('COMMIT');
    const outcomes = await Promise.all(cancellations);
    const cancelled = outcomes.filter((status) => status === 'cancelled').length;
    expect(cancelled, `four cancellations of one order ran at the same time and ${cancelled} of them cancelled it ` +
      `(outcomes: ${outcomes.join(', ')}). Check and change the status in one statement (UPDATE ... WHERE status = 'placed' ` +
      `RETURNING version): the row lock makes the others wait and then find the order cancelled (${ORDERS})`).toBe(1);
    expect(outcomes.filter((status) => status !== 'cancelled'), `the other cancellations should report 'already-cancelled' (${ORDERS})`)
      .toEqual(['already-cancelled', 'already-cancelled', 'already-cancelled']);

    const events = await pg.query<{ sequence: number; event_type: string; payload: { orderId?: string; reason?: string } }>(
      'SELECT sequence, event_type, payload FROM outbox WHERE aggregate_id = $1 ORDER BY sequence', [order.orderId]);
    expect(events.map((e) => `#${e.sequence} ${e.event_type}`), `order ${order.orderId} should have exactly two events: placed as ` +
      `#1, cancelled as #2, the order's version after the cancellation (${ORDERS})`).toEqual(['#1 order.placed', '#2 order.cancelled']);
    expect(events[1]!.payload.orderId, `the order.cancelled payload should be { orderId, reason } (${ORDERS})`).toBe(order.orderId);
    expect(events[1]!.payload.reason, `the order.cancelled payload should carry the reason given (${ORDERS})`).toMatch(/^changed my mind/);

    const [xids] = await pg.query<{ order_xid: string; event_xid: string; status: string; version: number }>(
      `SELECT o.xmin::text AS order_xid, e.xmin::text AS event_xid, o.status, o.version
       FROM orders o JOIN outbox e ON e.aggregate_id = o.id::text AND e.sequence = 2 WHERE o.id = $1`, [order.orderId]);
    expect(xids, `the order should be cancelled at version 2 (${ORDERS})`).toMatchObject({ status: 'cancelled', version: 2 });
    expect(xids!.event_xid, `the cancellation and its event were written by two transactions (${xids!.order_xid} and ` +
      `${xids!.event_xid}): write both with one client inside inTransaction (${ORDERS})`).toBe(xids!.order_xid);

    const unknown = await cancelOrder(pool, randomUUID(), 'no such order');
    expect(unknown.status, `cancelling an order that does not exist should report 'not-found' and write nothing (${ORDERS})`).toBe('not-found');
    expect(await pg.count('outbox'), 'cancelling an unknown order must not write an event').toBe(2);
  });

  // -------------------------------------------------------------------------------------------
  // The relay, on the shared broker.

  test('the relay publishes every pending event as a persistent JSON message carrying its event id, and marks it sent', async ({ pg, rabbit, unique, expect, onTestFinished }) => {
    await pg.migrate(SLUG);
    const exchange = unique('orders.events');
    const queue = await eventQueue(rabbit, exchange, unique('outbox-events'));
    const orders = aggregates(3);
    const events = await insertEvents(await pg.pool(), orders, 1, 3);
    const { log } = relayFor(await pg.pool(), { amqpUrl: serviceUrl('rabbitmq'), exchange, name: 'relay' }, onTestFinished);

    await waitUntilSent(pg, events, () => logTail(log), `the relay should publish them and set sent_at once the broker confirms (${RELAY})`);
    const arrivals = new Arrivals(rabbit, queue);
    await arrivals.until(events.length);
    const deliveries = arrivals.all;
    expect(new Set(deliveries.map((d) => d.eventId)).size, `${events.length} events were pending and the queue bound to ` +
      `"${exchange}" received ${deliveries.length} messages for ${new Set(deliveries.map((d) => d.eventId)).size} of them (${RELAY})`).toBe(events.length);
    if (!hadFailedRound(log)) {
      expect(deliveries.length, `${events.length} events were pending and the queue received ${deliveries.length} messages: ` +
        `with nothing failing, each event should be published once (${RELAY})`).toBe(events.length);
    }

    const byId = new Map(events.map((e) => [e.eventId, e]));
    for (const delivery of deliveries) {
      const event = byId.get(delivery.eventId);
      expect(event, `a message arrived whose body is not one of the pending events: ${delivery.body.slice(0, 200)}. Publish ` +
        `messageFor(event).content (${PUBLISHER})`).toBeDefined();
      expect(delivery.messageId, `every message should carry its event id as its AMQP message id, so that consumers can tell a ` +
        `repeat from a new event: use messageFor(event).options (${PUBLISHER})`).toBe(event!.eventId);
      expect(delivery.message.properties.deliveryMode, 'events must be persistent (delivery mode 2): a broker restart deletes ' +
        `transient messages even from a durable queue. Use messageFor(event).options (${PUBLISHER})`).toBe(2);
      expect(delivery.message.properties.contentType, `set contentType 'application/json' (${PUBLISHER})`).toBe('application/json');
      expect(delivery.message.fields.routingKey, `route each event by its type (messageFor(event).routingKey) (${PUBLISHER})`).toBe(event!.type);
      expect(JSON.parse(delivery.body), `the body should be the event's envelope (${PUBLISHER})`).toMatchObject({
        eventId: event!.eventId, aggregateType: 'order', aggregateId: event!.aggregateId, sequence: event!.sequence, type: event!.type, payload: event!.payload,
      });
    }
    const problems = sequenceProblems(deliveries);
    expect(problems, `each order's events should arrive in sequence order: ${summarize(problems)}. Publish an aggregate's ` +
      `events in sequence order, the next one only after the previous one is confirmed (${RELAY})`).toEqual([]);
  });

  test('an event the broker refuses is not marked sent, and the same order\'s later events wait behind it', async ({ pg, rabbit, unique, expect, onTestFinished }) => {
    await pg.migrate(SLUG);
    const exchange = unique('orders.events');
    // A queue that holds one message and makes the broker refuse (basic.nack) any more.
    const queue = await eventQueue(rabbit, exchange, unique('outbox-full'), { 'x-max-length': 1, 'x-overflow': 'reject-publish' });
    const [order] = aggregates(1);
    const events = await insertEvents(await pg.pool(), [order!], 1, 3);
    const { log } = relayFor(await pg.pool(), { amqpUrl: serviceUrl('rabbitmq'), exchange, name: 'relay' }, onTestFinished);

    await waitUntilSent(pg, events.slice(0, 1), () => logTail(log), `event #1 should be published and marked sent (${RELAY})`);
    await vi.waitFor(async () => expect(await rabbit.readyMessages(queue)).toBe(1), { timeout: 5_000, interval: 25 });
    // The relay tries #2 again and again, and the broker refuses it every time.
    await vi.waitFor(() => {
      if (log.filter((line) => line.includes('refused')).length < 3) throw new Error('not yet');
    }, { timeout: 5_000, interval: 25 }).catch(() => {});
    const pending = await pendingEventIds(pg, events.map((e) => e.eventId));
    expect(pending.length, `the broker refused events #2 and #3 (basic.nack: their queue was full and rejects publishes), ` +
      `yet ${2 - pending.length} of them are marked sent: they are lost. Mark an event sent only after the broker's ack: wait for ` +
      `the confirm in publishConfirmed (${PUBLISHER}) and mark only confirmed events (${RELAY})`).toBe(2);

    // Make room one message at a time: each time, the next event in sequence must be the one that comes.
    const taken: number[] = [];
    const channel = await rabbit.channel();
    while (taken.length < 3) {
      const message = await vi.waitFor(async () => {
        const got = await channel.get(queue, { noAck: true });
        if (!got) throw new Error('the queue is empty');
        return got;
      }, { timeout: 5_000, interval: 25 }).catch(() => undefined);
      if (!message) break;
      // A repeat of an event already taken (after a timeout, say) is allowed; only first copies count.
      const { sequence } = toDelivery(message);
      if (!taken.includes(sequence)) taken.push(sequence);
    }
    expect(taken, `once the queue had room again, the order's events should come in sequence, 1, 2, 3, each published again ` +
      `until the broker took it; they came as ${taken.join(', ') || 'nothing'}. A refused event stays pending, and the aggregate's ` +
      `later events wait behind it (${RELAY})`).toEqual([1, 2, 3]);
    await waitUntilSent(pg, events, () => logTail(log), `every event was taken by the broker in the end (${RELAY})`);
  });

  test('an event whose transaction commits after a later one, with a lower id, is still published', async ({ pg, rabbit, unique, expect, onTestFinished }) => {
    await pg.migrate(SLUG);
    const exchange = unique('orders.events');
    const queue = await eventQueue(rabbit, exchange, unique('outbox-events'));
    const { log } = relayFor(await pg.pool(), { amqpUrl: serviceUrl('rabbitmq'), exchange, name: 'relay' }, onTestFinished);
    const [slowOrder, quickOrder] = aggregates(2);

    // One order service instance writes its event and takes its time to commit...
    const slow = await pg.connect();
    await slow.query('BEGIN');
    const [late] = await insertEvents(slow, [slowOrder!], 1, 1);
    // ...while another writes, and commits, an event of its own: it gets the higher id.
    const [early] = await insertEvents(await pg.pool(), [quickOrder!], 1, 1);
    expect(late!.id, 'the slow transaction should have the lower id').toBeLessThan(early!.id);

    await waitUntilSent(pg, [early!], () => logTail(log), `the committed event should be published (${RELAY})`);
    // The relay has published the higher id: give it a few more rounds past it, then commit the slow transaction.
    await new Promise((resolve) => setTimeout(resolve, 200));
    await slow.query('COMMIT');

    const arrivals = new Arrivals(rabbit, queue);
    const published = await vi.waitFor(async () => {
      await arrivals.take();
      if (!arrivals.eventIds().has(late!.eventId)) throw new Error('not yet');
      return true;
    }, { timeout: 5_000, interval: 25 }).catch(() => false);
    expect(published, `the event with id ${late!.id} committed after the event with id ${early!.id} had been published, and ` +
      `5 s later it had still not been published: it is ${((await pendingEventIds(pg, [late!.eventId])).length > 0) ? 'pending' : 'marked sent'}. ` +
      'An identity value is taken at INSERT and becomes visible at COMMIT, so ids become visible out of order: a relay that reads ' +
      '"ids above the last one I published" skips every transaction that commits late. Select the pending events by ' +
      `sent_at IS NULL (${CLAIM})`).toBe(true);
    await waitUntilSent(pg, [late!], () => logTail(log), `it should be marked sent too (${RELAY})`);
  });

  test('two relays at once publish every event exactly once, each order\'s events in sequence', async ({ pg, rabbit, unique, expect, onTestFinished }) => {
    await pg.migrate(SLUG);
    const exchange = unique('orders.events');
    const queue = await eventQueue(rabbit, exchange, unique('outbox-events'));
    // Relay A's link to the broker is slow: its publishes take 40 ms longer to arrive than relay B's.
    const slowLink = await TcpProxy.start(serviceUrl('rabbitmq'));
    slowLink.delay(40);
    const limits = { aggregatesPerBatch: 4, eventsPerAggregate: 3 };
    const a = relayFor(await pg.newPoolFor({ max: 2 }), { amqpUrl: slowLink.url, exchange, name: 'relay-a', ...limits }, onTestFinished, () => slowLink.close());
    const b = relayFor(await pg.newPoolFor({ max: 2 }), { amqpUrl: serviceUrl('rabbitmq'), exchange, name: 'relay-b', ...limits }, onTestFinished);
    // Both relays connected and polling before there is anything to publish: then they race for it.
    const connected = (log: string[]) => log.some((line) => line.includes('connected to RabbitMQ'));
    await vi.waitFor(() => {
      if (todoIn(a.log) ?? todoIn(b.log)) return;
      if (!connected(a.log) || !connected(b.log)) throw new Error('not yet');
    }, { timeout: 10_000, interval: 25 }).catch(() => {});
    throwIfTodo([...a.log, ...b.log]);

    // Twelve orders with eight events each, committed at once, one event of each order in turn.
    const orders = aggregates(12);
    const writer = await pg.connect();
    await writer.query('BEGIN');
    const events = await insertEvents(writer, orders, 1, 8);
    await writer.query('COMMIT');

    await waitUntilSent(pg, events, () => `relay-a:\n${logTail(a.log)}\nrelay-b:\n${logTail(b.log)}`, `two relays should publish them all (${RELAY})`, 20_000);
    const arrivals = new Arrivals(rabbit, queue);
    await arrivals.until(events.length);
    const publishedBy = (log: string[]) => log.filter((line) => / published \d+ event/.test(line)).length;
    expect(Math.min(publishedBy(a.log), publishedBy(b.log)), 'both relays should have published some of the events, or this ' +
      `proves nothing about two relays at once (relay-a logged ${publishedBy(a.log)} rounds, relay-b ${publishedBy(b.log)})`).toBeGreaterThan(0);

    const copies = new Map<string, number>();
    for (const delivery of arrivals.all) copies.set(delivery.eventId, (copies.get(delivery.eventId) ?? 0) + 1);
    const twice = [...copies].filter(([, n]) => n > 1).length;
    if (!hadFailedRound(a.log) && !hadFailedRound(b.log)) {
      expect(twice, `${twice} events were published twice although no relay round failed: both relays took them. Each relay ` +
        `must claim what it publishes so that the other cannot take it too, and read the events after it holds the claim (${CLAIM})`).toBe(0);
    }
    expect(copies.size, `${events.length - copies.size} of the ${events.length} events are marked sent and never reached the ` +
      `queue (${PUBLISHER}, ${RELAY}).\nrelay-a logged:\n${logTail(a.log)}\nrelay-b logged:\n${logTail(b.log)}`).toBe(events.length);
    const problems = sequenceProblems(arrivals.all);
    expect(problems, `with two relays, orders' events arrived out of sequence: ${summarize(problems)}. Locking rows with ` +
      'FOR UPDATE SKIP LOCKED lets the second relay take the next events of an order while the first is still publishing the ' +
      `earlier ones. Claim whole aggregates (one relay per order at a time), e.g. pg_try_advisory_xact_lock per aggregate (${CLAIM})`).toEqual([]);
  });

  // -------------------------------------------------------------------------------------------
  // A network the check controls, and relay processes.

  test('a publish to a broker that vanished without closing the connection times out, and the relay publishes within seconds of its return', async ({ pg, rabbit, unique, expect, onTestFinished }) => {
    await pg.migrate(SLUG);
    const exchange = unique('orders.events');
    const queue = await eventQueue(rabbit, exchange, unique('outbox-events'));
    const network = await TcpProxy.start(serviceUrl('rabbitmq'));
    const { log } = relayFor(await pg.pool(), { amqpUrl: network.url, exchange, name: 'relay', publishTimeoutMs: 1_000 }, onTestFinished, () => network.close());

    const [warmUp] = await insertEvents(await pg.pool(), aggregates(1), 1, 1);
    await waitUntilSent(pg, [warmUp!], () => logTail(log), `the relay should publish through the network first (${RELAY})`);

    // The broker vanishes: no FIN, no RST, nothing comes back, new connections get no answer either.
    const failedRounds = () => log.filter((line) => line.includes('round failed')).length;
    const failedBeforeCut = failedRounds();
    network.cut();
    const events = await insertEvents(await pg.pool(), aggregates(2), 1, 2);
    await vi.waitFor(() => expect(network.bytesDropped).toBeGreaterThan(0), { timeout: 5_000, interval: 10 })
      .catch(() => { throwIfTodo(log); throw new Error(`the relay did not try to publish the new events within 5 s (${RELAY}).\nThe relay logged:\n${logTail(log)}`); });
    // The relay's publish timeout is 1 s: give it time to give up on those publishes.
    await vi.waitFor(() => {
      if (failedRounds() === failedBeforeCut) throw new Error('not yet');
    }, { timeout: 3_000, interval: 25 }).catch(() => {});
    const pending = await pendingEventIds(pg, events.map((e) => e.eventId));
    expect(pending.length, `the broker vanished and never confirmed anything, yet ${events.length - pending.length} events are ` +
      `marked sent: they are lost. Mark an event sent only after the broker's ack (${PUBLISHER}, ${RELAY})`).toBe(events.length);

    network.restore();
    const back = Date.now();
    const arrivals = new Arrivals(rabbit, queue);
    const recovered = await vi.waitFor(async () => {
      await arrivals.take();
      if (events.some((e) => !arrivals.eventIds().has(e.eventId))) throw new Error('not yet');
      return true;
    }, { timeout: 10_000, interval: 50 }).catch(() => false);
    throwIfTodo(log);
    expect(recovered, `the broker has been reachable again for ${((Date.now() - back) / 1000).toFixed(0)} s and the relay has ` +
      'not published the events that were pending: it is still waiting for the confirm of a publish it made on the connection ' +
      'that went silent. amqplib waits for a confirm for as long as the connection looks open, and a silent connection looks ' +
      'open until heartbeats give up on it (two to three heartbeat intervals: 2 to 3 minutes with RabbitMQ\'s default of 60 s). ' +
      `Bound every publish with a timeout (withTimeout in timing.ts) (${PUBLISHER}).\nThe relay logged:\n${logTail(log)}`).toBe(true);
    await waitUntilSent(pg, events, () => logTail(log), `they should be marked sent too (${RELAY})`);
    await vi.waitFor(() => expect(network.silentConnectionCount, 'the relay should drop the connection that went silent, not ' +
      `leave it open (${RELAY})`).toBe(0), { timeout: 5_000, interval: 50 });
  });

  test('a relay killed after the broker confirmed its events and before it marked them sent publishes them again with the same ids, absorbed by an idempotent consumer', async ({ pg, rabbit, procs, unique, expect, onTestFinished }) => {
    await pg.migrate(SLUG);
    const exchange = unique('orders.events');
    const queue = await eventQueue(rabbit, exchange, unique('outbox-events'));
    const events = await insertEvents(await pg.pool(), aggregates(2), 1, 2);
    const env = { ...pg.env, AMQP_URL: serviceUrl('rabbitmq'), OUTBOX_EXCHANGE: exchange, ...FAST_ENV };

    // The check holds the outbox so that nothing can change its rows (reads still work): the relay
    // can publish, but it stops at the moment it marks the events sent.
    const holder = await pg.connect();
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE outbox IN SHARE MODE');
    const first = procs.start(SLUG, 'relay.ts', { env: { ...env, RELAY_NAME: 'relay-1' }, name: 'the first relay (relay.ts)' });
    const published = await vi.waitFor(async () => {
      if (todoIn(first.output()) || !first.running) return false;
      if ((await rabbit.readyMessages(queue)) !== events.length) throw new Error('not yet');
      return true;
    }, { timeout: 15_000, interval: 50 }).catch(() => false);
    throwIfTodo(first.output());
    expect(published, `while the outbox could not be updated, the relay should still publish the ${events.length} pending ` +
      'events and then wait to mark them sent. It did not publish them all: does it write to the outbox before publishing? ' +
      `(${RELAY})\n${procs.combinedLog()}`).toBe(true);
    expect((await pendingEventIds(pg, events.map((e) => e.eventId))).length, 'the events cannot have been marked sent yet').toBe(events.length);

    await first.kill('SIGKILL');
    await holder.query('ROLLBACK');
    const stillPending = await pendingEventIds(pg, events.map((e) => e.eventId));
    expect(stillPending.length, `the relay was killed before its transaction committed, so every event should still be pending`).toBe(events.length);

    // The next relay (in this process: only the first one had to be a process, to be killed).
    const second = relayFor(await pg.pool(), { amqpUrl: serviceUrl('rabbitmq'), exchange, name: 'relay-2' }, onTestFinished);
    await waitUntilSent(pg, events, () => logTail(second.log), 'a new relay should publish the events the killed one never ' +
      `marked sent (${RELAY})`, 15_000);

    const { deliveries, applied } = await consumeIdempotently(pg, rabbit, queue);
    const copies = new Map<string, Delivery[]>();
    for (const delivery of deliveries) copies.set(delivery.eventId, [...(copies.get(delivery.eventId) ?? []), delivery]);
    for (const event of events) {
      const same = copies.get(event.eventId) ?? [];
      expect(same.length, `event ${event.eventId} was published by the killed relay and, never marked sent, should have been ` +
        `published again by the next one; it arrived ${same.length} time(s) (${RELAY})`).toBeGreaterThanOrEqual(2);
      expect(same.map((d) => d.messageId), `every copy must carry the event id as its message id (${PUBLISHER})`)
        .toEqual(same.map(() => event.eventId));
      expect(same.map((d) => d.body), `every copy of ${event.eventId} must be the same event as the first (${RELAY})`)
        .toEqual(same.map(() => same[0]!.body));
    }
    expect(applied.length, `the idempotent consumer received ${deliveries.length} messages and should apply each of the ` +
      `${events.length} events once`).toBe(events.length);
    expect(await pg.count('check_order_history'), 'each event should be applied once').toBe(events.length);
  });
});
