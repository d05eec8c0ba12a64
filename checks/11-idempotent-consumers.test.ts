import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Channel } from 'amqplib';
import type { Pool, PoolClient, PoolConfig } from 'pg';
import { recordCharge, type ChargeEffect } from '@lesson/11-idempotent-consumers/charges.ts';
import { startPaymentConsumer, type PaymentHandler } from '@lesson/11-idempotent-consumers/consumer.ts';
import { encodePaymentRequested, publishOptions, type PaymentRequested } from '@lesson/11-idempotent-consumers/events.ts';
import { handlePaymentRequested, type PaymentResult } from '@lesson/11-idempotent-consumers/handler.ts';
import { assertPaymentQueue, deadLetterQueueOf } from '@lesson/11-idempotent-consumers/topology.ts';
import { describe, expect, test as base, vi } from './support/fixtures.ts';
import { gradedFolder } from './support/lesson.ts';
import { Barrier, sqlState, type PgTestKit } from './support/postgres.ts';
import { closeConsumerChannel, type RabbitScope } from './support/rabbitmq.ts';
import { serviceEnv } from './support/services.ts';
import { within } from './support/polling.ts';

const SLUG = '11-idempotent-consumers';
const WHERE = gradedFolder(SLUG);
const HANDLER = `${WHERE}/handler.ts`;
const CONSUMER = `${WHERE}/consumer.ts`;
/** How long a check waits for something that takes milliseconds when it works. */
const WAIT_MS = 10_000;
const SUBSCRIBER = 'payments';
/**
 * The effect's latency in the race (a payment provider answering). A check-then-act that lets two
 * deliveries through does so inside this window; a claim in the transaction makes the second wait.
 */
const PROVIDER_LATENCY_MS = 150;

/**
 * The consumer catches what its own code throws and logs it, so a TODO left in consumer.ts never
 * reaches the check as an error: it is read from the log instead.
 */
const consoleErrors = vi.spyOn(console, 'error');

function loggedTodo(): Error | undefined {
  for (const args of consoleErrors.mock.calls) {
    for (const arg of args) {
      // The error itself when it was logged, so its stack still says where in the lesson it was thrown.
      if (arg instanceof Error && arg.message.startsWith('TODO:')) return arg;
      const todo = /\bTODO: (\w+)/.exec(String(arg));
      if (todo) return new Error(`TODO: ${todo[1]} (${CONSUMER})`);
    }
  }
  return undefined;
}

/** Every event id the check has given a payment: an id the handler receives that is not here was made up. */
const issuedIds = new Set<string>();

function paymentRequested(orderNumber = 1): PaymentRequested {
  const eventId = randomUUID();
  issuedIds.add(eventId);
  return {
    eventId,
    type: 'payment.requested',
    occurredAt: new Date().toISOString(),
    orderId: `order-${orderNumber}-${randomUUID().slice(0, 8)}`,
    customerId: 'grace@example.com',
    amountCents: 4200 + orderNumber,
    currency: 'EUR',
  };
}

/** One delivery as the learner's consumer handed it over, and what handlePaymentRequested made of it. */
interface Call {
  event: PaymentRequested;
  redelivered: boolean;
  settled: boolean;
  result?: PaymentResult;
  error?: unknown;
}

interface HandlerOptions {
  subscriber?: string;
  charge?: ChargeEffect;
  /** Runs before handlePaymentRequested, e.g. to wait at a barrier or to look at the tables. */
  before?: (call: Call) => Promise<void>;
  /** Runs the moment handlePaymentRequested has settled, before the consumer can ack, nack or receive more. */
  after?: (call: Call) => void;
}

/** The handler the check gives the learner's consumer: the learner's handlePaymentRequested, recorded. */
class Calls {
  readonly all: Call[] = [];

  handler(pool: Pool, options: HandlerOptions = {}): PaymentHandler {
    return async (event, delivery) => {
      const call: Call = { event, redelivered: delivery.redelivered, settled: false };
      this.all.push(call);
      try {
        await options.before?.(call);
        call.result = await handlePaymentRequested(pool, options.subscriber ?? SUBSCRIBER, event, options.charge);
        return call.result;
      } catch (error) {
        call.error = error;
        throw error;
      } finally {
        call.settled = true;
        options.after?.(call);
      }
    };
  }

  settled(): Call[] {
    return this.all.filter((call) => call.settled);
  }

  of(event: PaymentRequested): Call[] {
    return this.all.filter((call) => call.event.eventId === event.eventId);
  }

  /**
   * What makes waiting pointless, reported at once: a TODO thrown by the learner's handler or logged
   * by the consumer (reported as the TODO it is), or an event id the consumer made up, by which the
   * check can never find its payments.
   */
  problem(): Error | undefined {
    const todo = this.all.find((c) => c.error instanceof Error && c.error.message.startsWith('TODO:'));
    if (todo) return todo.error as Error;
    const logged = loggedTodo();
    if (logged) return logged;
    const madeUp = this.madeUpId();
    return madeUp ? new Error(madeUp) : undefined;
  }

  /** The explanation, pointing at the consumer, when it handed the handler an event id no message carried. */
  madeUpId(): string | undefined {
    const call = this.all.find((c) => !issuedIds.has(c.event.eventId));
    if (!call) return undefined;
    return `the consumer handed the handler event id ${call.event.eventId}, which no message carried. An id made ` +
      'when a message arrives is new on every delivery, so a redelivery looks like a new payment and is charged ' +
      `again. Pass on the event parsePaymentMessage returns, with the producer's eventId (${CONSUMER})`;
  }
}

/** What an error from handlePaymentRequested says about the learner's transaction. */
function explain(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  switch (sqlState(error)) {
    case '25P02':
      return `failed with "${text}" (SQLSTATE 25P02). In PostgreSQL an error inside a transaction aborts all of ` +
        'it: after catching a unique violation, every further statement fails until ROLLBACK. Do not catch ' +
        '23505: INSERT … ON CONFLICT (subscriber, event_id) DO NOTHING RETURNING event_id raises nothing, and no ' +
        `row returned means "already processed" (${HANDLER})`;
    case '23505':
      return `failed with "${text}" (SQLSTATE 23505): a plain INSERT into processed_events raises a unique ` +
        'violation for a duplicate. Use INSERT … ON CONFLICT (subscriber, event_id) DO NOTHING RETURNING event_id, ' +
        `and treat "no row returned" as a duplicate, answered with findCharge (${HANDLER})`;
    case '40001':
      return `failed with "${text}" (SQLSTATE 40001): under REPEATABLE READ or SERIALIZABLE, a claim that meets a ` +
        'concurrent claim of the same key fails instead of returning no row. Run the transaction in READ COMMITTED, ' +
        `PostgreSQL's default: a plain BEGIN (${HANDLER})`;
    default:
      return `failed with: ${text} (${HANDLER})`;
  }
}

async function paymentQueue(rabbit: RabbitScope, unique: (prefix: string) => string): Promise<{ queue: string; dead: string }> {
  const queue = rabbit.queue(unique('payments'));
  const dead = rabbit.queue(deadLetterQueueOf(queue));
  await assertPaymentQueue(await rabbit.channel(), queue);
  return { queue, dead };
}

/** Publishes as the checkout does: persistent, the event id as message id, confirmed by the broker. */
async function publish(rabbit: RabbitScope, queue: string, events: readonly PaymentRequested[]): Promise<void> {
  const channel = await rabbit.confirmChannel();
  for (const event of events) channel.sendToQueue(queue, encodePaymentRequested(event), publishOptions(event));
  await channel.waitForConfirms();
}

/** One instance of the payment consumer: the learner's consumer on a connection and channel of its own. */
async function consumerInstance(rabbit: RabbitScope, queue: string, handle: PaymentHandler, prefetch: number, name = 'payments-a'): Promise<Channel> {
  const connection = await rabbit.connect();
  const channel = await rabbit.channel(connection);
  await startPaymentConsumer(channel, queue, handle, { prefetch, name });
  return channel;
}

/**
 * Closes the consumers' channels (each close travels behind the acks sent on it, and returns every
 * delivery still unacknowledged to the queue) and asks the broker what is left: messages back in the
 * queue were never settled, messages in the dead-letter queue were rejected.
 */
async function leftOnBroker(rabbit: RabbitScope, channels: readonly Channel[], queue: string, dead: string) {
  await Promise.all(channels.map((channel) => closeConsumerChannel(channel)));
  let requeued = 0;
  let deadLettered = 0;
  // Twice, a moment apart: a requeue the broker is still doing cannot pass for an acknowledgement.
  for (let look = 0; look < 2; look++) {
    if (look > 0) await sleep(100);
    requeued = Math.max(requeued, (await rabbit.readyMessages(queue)) ?? 0);
    deadLettered = Math.max(deadLettered, (await rabbit.readyMessages(dead)) ?? 0);
  }
  return { requeued, deadLettered };
}

/** Polls until `done`; fails at once with what `bail` returns (a TODO, a call that went wrong), else at the deadline. */
async function waitUntil(
  done: () => boolean | Promise<boolean>,
  message: () => string,
  bail: () => Error | undefined = () => undefined,
  timeoutMs = WAIT_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stop = bail();
    if (stop) throw stop;
    if (await done()) return;
    if (Date.now() > deadline) throw new Error(message());
    await sleep(20);
  }
}


/**
 * The database pools a test hands to the learner's code, with the connections they have out. A
 * connection the code never releases would keep the pool (and the test's teardown) waiting forever:
 * the check reports it and destroys it instead.
 */
class Pools {
  private readonly out = new Set<PoolClient>();

  constructor(private readonly pg: PgTestKit) {}

  /** A pool of its own, as one instance of the service opens one, connected before it is used. */
  async open(config: PoolConfig = {}): Promise<Pool> {
    const pool = await this.pg.newPoolFor({ max: 5, ...config });
    pool.on('acquire', (client) => this.out.add(client));
    pool.on('release', (_error, client) => this.out.delete(client));
    pool.on('remove', (client) => this.out.delete(client));
    await pool.query('SELECT 1');
    return pool;
  }

  /** Connections handed out and not given back. */
  outstanding(): number {
    return this.out.size;
  }

  expectAllReleased(): void {
    expect(this.outstanding(), `every delivery has been handled, and ${this.outstanding()} database connection(s) were ` +
      'never given back to the pool; a pool runs out after a few of those and every later payment waits forever. ' +
      `Release the client in a finally block (${HANDLER})`).toBe(0);
  }

  reclaim(): void {
    for (const client of [...this.out]) client.release(new Error('never released by the code under test'));
  }
}

const test = base.extend<{ pools: Pools }>({
  pools: async ({ pg }, use) => {
    const pools = new Pools(pg);
    await use(pools);
    pools.reclaim();
  },
});

const charges = (pg: PgTestKit, where?: string, params?: unknown[]) => pg.count('charges', where, params);
const processed = (pg: PgTestKit, where?: string, params?: unknown[]) => pg.count('processed_events', where, params);

/** Every charge, with what the message should say about a count other than one. */
async function expectOneCharge(pg: PgTestKit, calls: Calls, what: string): Promise<void> {
  const taken = await charges(pg);
  const reason = taken > 1
    ? (calls.madeUpId() ?? `each delivery got past the dedupe. Claim the event in the transaction of the charge, ` +
      'with INSERT INTO processed_events … ON CONFLICT (subscriber, event_id) DO NOTHING RETURNING event_id, and ' +
      `charge only when it returned a row (${HANDLER})`)
    : `no charge was committed (${HANDLER})`;
  expect(taken, `${what} should be charged exactly once; charges holds ${taken} rows: ${reason}`).toBe(1);
}

describe.concurrent('11 idempotent-consumers', () => {
  test('a payment delivered twice, one after the other, is charged once and both deliveries are acknowledged', async ({ pg, rabbit, pools, unique }) => {
    await pg.migrate(SLUG);
    const { queue, dead } = await paymentQueue(rabbit, unique);
    const calls = new Calls();
    const channel = await consumerInstance(rabbit, queue, calls.handler(await pools.open()), 5);
    const event = paymentRequested();

    await publish(rabbit, queue, [event]);
    await waitUntil(() => calls.settled().length >= 1, () => `a payment was published and the consumer never finished ` +
      `handling it: ${calls.all.length} delivery(ies) reached the handler (${CONSUMER})`, () => calls.problem());
    const [first] = calls.all;
    if (first!.error) throw new Error(`the first delivery of a new payment ${explain(first!.error)}`, { cause: first!.error });

    await publish(rabbit, queue, [event]);
    await waitUntil(() => calls.settled().length >= 2, () => 'the same payment was published a second time, after the first ' +
      `was charged, and the second delivery never reached the handler or never finished (${CONSUMER})`, () => calls.problem());

    await expectOneCharge(pg, calls, 'a payment delivered twice');
    const second = calls.all[1]!;
    if (second.error) throw new Error(`the second delivery of the same payment should be recognised as a duplicate, but it ${explain(second.error)}`, { cause: second.error });
    expect(second.result?.status, `the second delivery should resolve as a duplicate (${HANDLER})`).toBe('duplicate');
    expect(second.result?.chargeId, 'a duplicate should be answered with the charge the first delivery took ' +
      `(findCharge), so whoever retried gets the same result (${HANDLER})`).toBe(first!.result?.chargeId);

    pools.expectAllReleased();
    const left = await leftOnBroker(rabbit, [channel], queue, dead);
    expect(left.requeued, `${left.requeued} delivery(ies) went back to the queue when the consumer's channel closed: they ` +
      `were never acknowledged. Ack every delivery whose handler resolved, duplicates included (${CONSUMER})`).toBe(0);
    expect(left.deadLettered, `${left.deadLettered} delivery(ies) were rejected to the dead-letter queue; a duplicate is ` +
      `not a failure: acknowledge it (${CONSUMER})`).toBe(0);
  });

  test('two deliveries of one payment started together on two consumer instances charge once and both are acknowledged', async ({ pg, rabbit, pools, unique }) => {
    await pg.migrate(SLUG);
    const { queue, dead } = await paymentQueue(rabbit, unique);
    const calls = new Calls();
    // Both deliveries wait here until both have arrived, then run at the same moment.
    const barrier = new Barrier(2);
    const slowCharge: ChargeEffect = async (db, subscriber, event) => {
      await sleep(PROVIDER_LATENCY_MS);
      return recordCharge(db, subscriber, event);
    };
    const instances = await Promise.all(['payments-a', 'payments-b'].map(async (name) => {
      // Each instance has its own pool, connected before the race so that neither starts late.
      const pool = await pools.open({ max: 2 });
      const handle = calls.handler(pool, {
        charge: slowCharge,
        before: () => within(WAIT_MS, barrier.arrive(), `only ${calls.all.length} of the 2 deliveries reached a consumer ` +
          `instance: each instance should receive one (prefetch 1) (${CONSUMER})`),
      });
      return consumerInstance(rabbit, queue, handle, 1, name);
    }));
    const event = paymentRequested();

    await publish(rabbit, queue, [event, event]);
    await waitUntil(() => calls.settled().length >= 2, () => `the same payment was delivered twice, once to each consumer ` +
      `instance, and ${calls.settled().length} of the 2 deliveries finished (${CONSUMER})`, () => calls.problem(), WAIT_MS + 5_000);

    await expectOneCharge(pg, calls, 'a payment delivered to two consumers at once');
    const failed = calls.all.find((call) => call.error);
    if (failed) throw new Error(`both deliveries should succeed, one as a duplicate, but one of them ${explain(failed.error)}`, { cause: failed.error });
    const statuses = calls.all.map((call) => call.result?.status).sort();
    expect(statuses, 'one delivery should take the charge and the other, which waited for it on the claim, should ' +
      `resolve as a duplicate (${HANDLER})`).toEqual(['charged', 'duplicate']);
    expect(calls.all[0]!.result?.chargeId, `both deliveries should answer with the same charge (${HANDLER})`).toBe(calls.all[1]!.result?.chargeId);
    expect(await processed(pg), 'processed_events should hold one row for the event').toBe(1);

    pools.expectAllReleased();
    const left = await leftOnBroker(rabbit, instances, queue, dead);
    expect(left.requeued + left.deadLettered, `both deliveries should be acknowledged; ${left.requeued} went back to the ` +
      `queue and ${left.deadLettered} were dead-lettered (${CONSUMER})`).toBe(0);
  });

  const failures: Array<{ name: string; effect: () => ChargeEffect; writesFirst: boolean }> = [
    {
      name: 'an effect that throws rolls the processed row back with it, and the redelivery charges once',
      writesFirst: false,
      effect: () => {
        let failed = false;
        // Not async: it throws before it returns a promise.
        return (db, subscriber, event) => {
          if (!failed) {
            failed = true;
            throw new Error('card network unreachable');
          }
          return recordCharge(db, subscriber, event);
        };
      },
    },
    {
      name: 'an effect that rejects after writing its charge rolls back both rows, and the redelivery charges once',
      writesFirst: true,
      effect: () => {
        let failed = false;
        return async (db, subscriber, event) => {
          const chargeId = await recordCharge(db, subscriber, event);
          if (!failed) {
            failed = true;
            await sleep(10);
            throw new Error('payment provider timed out after the charge was written');
          }
          return chargeId;
        };
      },
    },
  ];

  for (const failure of failures) {
    test(failure.name, async ({ pg, rabbit, pools, unique }) => {
      await pg.migrate(SLUG);
      const { queue, dead } = await paymentQueue(rabbit, unique);
      const calls = new Calls();
      const atRedelivery = { processed: -1, charges: -1 };
      let keptAfterFailure = -1;
      // One connection: if the failed attempt keeps it, the redelivery has none.
      const pool = await pools.open({ max: 1 });
      const channel = await consumerInstance(rabbit, queue, calls.handler(pool, {
        charge: failure.effect(),
        before: async (call) => {
          if (call !== calls.all[1]) return;
          atRedelivery.processed = await processed(pg);
          atRedelivery.charges = await charges(pg);
        },
        after: (call) => {
          if (call === calls.all[0]) keptAfterFailure = pools.outstanding();
        },
      }), 1);
      const event = paymentRequested();

      await publish(rabbit, queue, [event]);
      await waitUntil(() => calls.settled().length >= 1, () => `a payment was published and the consumer never finished ` +
        `handling it (${CONSUMER})`, () => calls.problem());
      const [first] = calls.all;
      expect(first!.error, 'the effect failed, so handlePaymentRequested should reject with its error (after ROLLBACK); ' +
        `it resolved with ${JSON.stringify(first!.result)} and the consumer took the payment as done (${HANDLER})`).toBeInstanceOf(Error);
      expect(keptAfterFailure, 'handlePaymentRequested rejected and kept its database connection: the pool here has ' +
        `one, so the redelivery would wait for it forever. Release the client in a finally block (${HANDLER})`).toBe(0);

      await waitUntil(() => calls.settled().length >= 2, () => calls.all.length < 2
        ? 'the first delivery failed and the broker never delivered it again: the consumer acknowledged it anyway ' +
          '(ack only after the handler resolved), or rejected it without requeue. Nack a failed delivery with ' +
          `requeue, channel.nack(message, false, true), when it was not redelivered (${CONSUMER})`
        : 'the redelivery never finished: is it waiting for a database connection? The pool here has one, and the ' +
          `failed attempt must give it back: client.release() in a finally block (${HANDLER})`, () => calls.problem());
      const second = calls.all[1]!;
      expect(second.redelivered, 'the second delivery should be the broker\'s redelivery of the nacked message, flagged ' +
        `redelivered (${CONSUMER})`).toBe(true);
      expect(atRedelivery.processed, 'when the redelivery arrived, processed_events still held the event: the failed ' +
        'attempt committed its processed row without the charge, so the redelivery is taken for a duplicate and the ' +
        `customer is never charged. Write both in one transaction and ROLLBACK when the effect fails (${HANDLER})`).toBe(0);
      if (failure.writesFirst) {
        expect(atRedelivery.charges, 'when the redelivery arrived, the failed attempt\'s charge was committed: ROLLBACK ' +
          `the transaction when the effect fails (${HANDLER})`).toBe(0);
      }
      if (second.error) throw new Error(`the redelivery should charge the payment, but it ${explain(second.error)}`, { cause: second.error });
      expect(second.result?.status, `the redelivery should take the charge (${HANDLER})`).toBe('charged');
      await expectOneCharge(pg, calls, 'a payment whose first attempt failed');
      expect(await processed(pg), 'processed_events should hold one row for the event').toBe(1);

      pools.expectAllReleased();
    const left = await leftOnBroker(rabbit, [channel], queue, dead);
      expect(left.requeued + left.deadLettered, `the redelivery succeeded and should be acknowledged; ${left.requeued} ` +
        `went back to the queue and ${left.deadLettered} were dead-lettered (${CONSUMER})`).toBe(0);
    });
  }

  test('a consumer killed after its commit and before its ack is redelivered to a new consumer, which acknowledges it without charging again', async ({ pg, rabbit, procs, pools, unique }) => {
    // The process applies the migrations and declares the queue itself; it starts first, as it takes longest.
    await pg.ready();
    const queue = rabbit.queue(unique('payments'));
    const dead = rabbit.queue(deadLetterQueueOf(queue));
    const crashing = procs.start(SLUG, 'payment-consumer.ts', {
      env: { ...serviceEnv('rabbitmq'), ...pg.env, PAYMENT_QUEUE: queue, SUBSCRIBER, CONSUMER_NAME: 'payments-a', CRASH_AFTER_COMMIT: '1' },
      name: 'payments-a (payment-consumer.ts with CRASH_AFTER_COMMIT=1)',
    });
    await crashing.waitForOutput(/ready: consuming/, 'reported it was ready');
    const event = paymentRequested();
    await publish(rabbit, queue, [event]);

    const handled = await crashing.waitForOutput(/\] (charged|duplicate) (\S+)/, `handled payment ${event.eventId}`);
    expect(handled[2], `payments-a handled event ${handled[2]}, but the message carried event id ${event.eventId}: pass on ` +
      `the producer's eventId (${CONSUMER})`).toBe(event.eventId);
    const exit = await within(WAIT_MS, crashing.exited, 'payments-a did not exit after its commit (CRASH_AFTER_COMMIT=1)');
    expect(exit.signal, 'payments-a should have killed itself with SIGKILL right after its commit').toBe('SIGKILL');
    expect(await processed(pg), 'payments-a reported the payment handled, so its commit should be in processed_events: ' +
      `handlePaymentRequested must resolve only after COMMIT (${HANDLER})`).toBe(1);

    // The next instance of the service (here in the check's process, with the same code).
    const calls = new Calls();
    const channel = await consumerInstance(rabbit, queue, calls.handler(await pools.open()), 5, 'payments-b');
    await waitUntil(() => calls.settled().length >= 1, () => `payments-a was killed after its commit and before its ack, so ` +
      'the broker should deliver the payment again to the next consumer; it never did: the message had been ' +
      `acknowledged before the commit (${CONSUMER})`, () => calls.problem());
    const [redelivery] = calls.all;
    expect(redelivery!.redelivered, 'the next consumer should receive the message as a redelivery').toBe(true);
    if (redelivery!.error) throw new Error(`the redelivered payment should be absorbed as a duplicate, but it ${explain(redelivery!.error)}`, { cause: redelivery!.error });
    expect(redelivery!.result?.status, 'the next consumer charged the redelivered payment again: the processed row that ' +
      `payments-a committed should make it a duplicate (${HANDLER})`).toBe('duplicate');
    expect(await charges(pg), 'the payment should be charged once, by payments-a').toBe(1);

    pools.expectAllReleased();
    const left = await leftOnBroker(rabbit, [channel], queue, dead);
    expect(left.requeued, `the next consumer absorbed the redelivery but did not acknowledge it (${CONSUMER})`).toBe(0);
    expect(left.deadLettered, `the redelivered duplicate was dead-lettered instead of acknowledged (${CONSUMER})`).toBe(0);
  });

  test('the same event id is charged once by each of two subscribers, and a repeat is a duplicate for both', async ({ pg, pools }) => {
    await pg.migrate(SLUG);
    const pool = await pools.open();
    const event = paymentRequested();
    const subscribers = ['payments', 'loyalty-points'];

    const ownRecord = 'Each subscriber keeps its own record of what it processed: processed_events is keyed by ' +
      '(subscriber, event_id), and the claim uses the subscriber it is given. Keyed by the event id alone, the first ' +
      `subscriber's row makes every other subscriber skip the event (${HANDLER}, ${WHERE}/migrations/001_payments.sql)`;
    const results: PaymentResult[] = [];
    for (const subscriber of subscribers) {
      try {
        results.push(await handlePaymentRequested(pool, subscriber, event));
      } catch (error) {
        if (error instanceof Error && error.message.startsWith('TODO:')) throw error;
        if (results.length === 0) throw new Error(`a new event for "${subscriber}" should be charged, but it ${explain(error)}`, { cause: error });
        throw new Error(`"${subscriber}" received an event that "${subscribers[0]}" had processed, and it ${explain(error)}\n${ownRecord}`, { cause: error });
      }
    }
    expect(results.map((r) => r.status), `"${subscribers[1]}" received an event that "${subscribers[0]}" had processed and ` +
      `took it for a duplicate. ${ownRecord}`).toEqual(['charged', 'charged']);
    for (const subscriber of subscribers) {
      expect(await charges(pg, 'subscriber = $1', [subscriber]), `subscriber "${subscriber}" should have one charge`).toBe(1);
    }
    expect(await processed(pg), 'processed_events should hold one row per subscriber').toBe(2);

    for (const [i, subscriber] of subscribers.entries()) {
      const again = await handlePaymentRequested(pool, subscriber, event).catch((error: unknown) => {
        throw new Error(`the repeat for "${subscriber}" should be a duplicate, but it ${explain(error)}`, { cause: error });
      });
      expect(again, `the repeat for "${subscriber}" should be a duplicate answered with its own charge (${HANDLER})`)
        .toEqual({ status: 'duplicate', chargeId: results[i]!.chargeId });
    }
    expect(await charges(pg), 'the repeats should not charge').toBe(2);
    pools.expectAllReleased();
  });

  test('a malformed message is rejected without requeue and the consumer goes on to the next payment', async ({ pg, rabbit, pools, unique }) => {
    await pg.migrate(SLUG);
    const { queue, dead } = await paymentQueue(rabbit, unique);
    const calls = new Calls();
    // Prefetch 1: a malformed message left unsettled would hold up everything behind it.
    const channel = await consumerInstance(rabbit, queue, calls.handler(await pools.open()), 1);
    const { eventId: _dropped, ...withoutId } = paymentRequested(2);
    const malformed: Array<{ content: Buffer; messageId?: string }> = [
      { content: Buffer.alloc(0) },
      { content: Buffer.from('<charge order 7 please>') },
      { content: Buffer.from(JSON.stringify(withoutId)) },
      { content: Buffer.from(JSON.stringify({ ...paymentRequested(3), amountCents: 0 })) },
      // A message id that disagrees with the event id: which one is the dedupe key?
      { content: encodePaymentRequested(paymentRequested(4)), messageId: randomUUID() },
    ];
    const raw = await rabbit.confirmChannel();
    for (const { content, messageId } of malformed) raw.sendToQueue(queue, content, { persistent: true, messageId });
    await raw.waitForConfirms();
    const valid = paymentRequested(5);
    await publish(rabbit, queue, [valid]);

    await waitUntil(() => calls.of(valid).some((call) => call.settled), () => `after ${malformed.length} malformed messages, ` +
      `the valid payment behind them was never handled: reject a message that cannot be parsed with ` +
      `channel.nack(message, false, false), so the consumer moves on (${CONSUMER})`, () => calls.problem());
    expect(calls.all.map((call) => call.event.eventId), 'only the valid payment should reach the handler; a message whose ' +
      `message id is not its event id is malformed too: pass message.properties.messageId to parsePaymentMessage (${CONSUMER})`)
      .toEqual([valid.eventId]);
    const [call] = calls.all;
    if (call!.error) throw new Error(`the valid payment should be charged, but it ${explain(call!.error)}`, { cause: call!.error });
    expect(await charges(pg), 'the valid payment should be charged once').toBe(1);

    pools.expectAllReleased();
    const left = await leftOnBroker(rabbit, [channel], queue, dead);
    expect(left.requeued, `${left.requeued} message(s) went back to the queue when the consumer's channel closed: malformed ` +
      `messages left unsettled or requeued come back forever. Reject them without requeue (${CONSUMER})`).toBe(0);
    expect(left.deadLettered, `the ${malformed.length} malformed messages should be rejected (nack without requeue), which ` +
      `moves them to the dead-letter queue for someone to look at; it holds ${left.deadLettered}. An acknowledged ` +
      `malformed message disappears without a trace (${CONSUMER})`).toBe(malformed.length);
  });

  test('a payment whose effect keeps failing is tried twice, then dead-lettered uncharged, while the next payment is charged', async ({ pg, rabbit, pools, unique }) => {
    await pg.migrate(SLUG);
    const { queue, dead } = await paymentQueue(rabbit, unique);
    const calls = new Calls();
    const poison = paymentRequested(1);
    const healthy = paymentRequested(2);
    const declinedForPoison: ChargeEffect = async (db, subscriber, event) => {
      if (event.eventId === poison.eventId) {
        await sleep(5);
        throw new Error('card declined by the issuer');
      }
      return recordCharge(db, subscriber, event);
    };
    const channel = await consumerInstance(rabbit, queue, calls.handler(await pools.open(), { charge: declinedForPoison }), 1);

    await publish(rabbit, queue, [poison, healthy]);
    const looping = () => calls.of(poison).length > 2
      ? new Error(`the failing payment was delivered ${calls.of(poison).length} times and is still being retried: requeue a ` +
        `failed delivery only when it was not redelivered, and reject it without requeue after that (${CONSUMER})`)
      : undefined;
    await waitUntil(async () => ((await rabbit.readyMessages(dead)) ?? 0) >= 1 && calls.of(healthy).some((c) => c.settled),
      () => `the failing payment was delivered ${calls.of(poison).length} time(s) and the healthy one ` +
        `${calls.of(healthy).length} time(s); the failing one should be dead-lettered after its second delivery ` +
        `(nack without requeue when message.fields.redelivered) (${CONSUMER})`, () => calls.problem() ?? looping());

    expect(calls.of(poison).length, `the failing payment should be tried exactly twice: once, then once more when ` +
      `redelivered (${CONSUMER})`).toBe(2);
    expect(await charges(pg, 'event_id = $1', [poison.eventId]), 'the declined payment must not be charged').toBe(0);
    expect(await processed(pg, 'event_id = $1', [poison.eventId]), 'the declined payment must not be recorded as ' +
      `processed: its rows are rolled back with the failure (${HANDLER})`).toBe(0);
    expect(await charges(pg, 'event_id = $1', [healthy.eventId]), 'the payment behind the failing one should be charged once').toBe(1);

    pools.expectAllReleased();
    const left = await leftOnBroker(rabbit, [channel], queue, dead);
    expect(left.requeued, `nothing should be left unacknowledged in the queue (${CONSUMER})`).toBe(0);
    const deadLetters = await rabbit.drain(dead);
    expect(deadLetters.map((m) => m.properties.messageId), 'the dead-letter queue should hold the failing payment, once')
      .toEqual([poison.eventId]);
  });

  test('a consumer works on at most its prefetch of payments at a time and leaves the rest in the queue', async ({ pg, rabbit, pools, unique }) => {
    await pg.migrate(SLUG);
    const { queue, dead } = await paymentQueue(rabbit, unique);
    const calls = new Calls();
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const prefetch = 2;
    const channel = await consumerInstance(rabbit, queue, calls.handler(await pools.open(), { before: () => gate }), prefetch);
    const events = Array.from({ length: 6 }, (_, i) => paymentRequested(i + 1));

    await publish(rabbit, queue, events);
    await waitUntil(async () => ((await rabbit.readyMessages(queue)) ?? events.length) <= events.length - prefetch,
      () => `${events.length} payments were published and the consumer took ${calls.all.length}: with prefetch ${prefetch} ` +
        `it should take ${prefetch} (${CONSUMER})`, () => calls.problem());
    // A lower bound: time for deliveries beyond the prefetch to arrive, if the broker were sending them.
    await sleep(300);
    const working = calls.all.length;
    const waiting = await rabbit.readyMessages(queue);
    expect(waiting, `with prefetch ${prefetch} and every handler still running, the broker should keep ` +
      `${events.length - prefetch} of ${events.length} payments in the queue; it had sent all but ${waiting}, and ` +
      `${working} were being worked on at once, each holding a database connection. The broker sends more only ` +
      'when deliveries are acknowledged: call channel.prefetch(options.prefetch) before channel.consume, and ack ' +
      `a delivery only once its handler has resolved (${CONSUMER})`).toBe(events.length - prefetch);
    expect(working, `the consumer worked on ${working} payments at once with prefetch ${prefetch}`).toBeLessThanOrEqual(prefetch);

    open();
    await waitUntil(() => calls.settled().length >= events.length, () => `once the first payments finished, the rest should ` +
      `follow: ${calls.settled().length} of ${events.length} were handled (${CONSUMER})`, () => calls.problem());
    expect(await charges(pg), 'every payment should be charged once').toBe(events.length);
    pools.expectAllReleased();
    const left = await leftOnBroker(rabbit, [channel], queue, dead);
    expect(left.requeued + left.deadLettered, `every payment should be acknowledged (${CONSUMER})`).toBe(0);
  });
});
