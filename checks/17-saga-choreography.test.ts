import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { OrderLine } from '@lesson/17-saga-choreography/events.ts';
import { locationInGradedCode, todoMessage } from '../tooling/course/todo.ts';
import { describe, expect, test, vi, type CheckFixtures } from './support/fixtures.ts';
import { gradedFolder } from './support/lesson.ts';
import { PgTestKit } from './support/postgres.ts';
import type { LessonProcess } from './support/processes.ts';
import { CLASSIC_QUEUE } from './support/rabbitmq.ts';
import { serviceEnv, serviceUrl } from './support/services.ts';

const SLUG = '17-saga-choreography';
const WHERE = gradedFolder(SLUG);

/**
 * The file each TODO of the starter is in, for a TODO the check sees only by its message (in a log
 * line or a response, often without a stack); for any other TODO, the stack printed after it.
 */
const TODO_FILES: Record<string, string> = {
  handleDelivery: 'consumer.ts',
  releaseStock: 'inventory.ts',
  reserveStock: 'inventory.ts',
  placeOrder: 'order-saga.ts',
  reactAsOrder: 'order-saga.ts',
  rejectOverdueOrders: 'order-saga.ts',
};

/** "TODO: name (where it is)", as the runner reports an unwritten TODO. */
function todoError(name: string, text: string): Error {
  const file = TODO_FILES[name];
  return new Error(todoMessage(name, file ? `${WHERE}/${file}` : locationInGradedCode(text)));
}

/** How long a saga may take to settle once every service is up (it takes well under a second). */
const SETTLE_MS = 20_000;
/** POST /orders commits one transaction: anything slower than this is waiting for someone else. */
const ANSWER_WITHIN_MS = 8_000;
/** A service process loads in about a second; on a busy machine, many start at once. */
const START_WITHIN_MS = 60_000;
/** The deadline the order service gets in the deadline requirement. */
const DEADLINE_MS = 1_500;
/** Long enough that no other requirement ever meets the deadline. */
const NO_DEADLINE_MS = 120_000;

type ServiceKey = 'orders' | 'inventory' | 'payments';
type Status = 'PENDING' | 'APPROVED' | 'REJECTED';

const SERVICE_FILES: Record<ServiceKey, string> = {
  orders: 'order-service.ts',
  inventory: 'inventory-service.ts',
  payments: 'payment-service.ts',
};

/** Which file should have done the next step, given the last event a saga got to. */
const NEXT_STEP: Record<string, string> = {
  none: `order.placed was never published: placeOrder must write it to the outbox in the same transaction as the order (${WHERE}/order-saga.ts), and handleDelivery must work for anything to flow (${WHERE}/consumer.ts)`,
  'order.placed': `the inventory service never answered order.placed with stock.reserved or stock.rejected (${WHERE}/inventory.ts, reserveStock; and ${WHERE}/consumer.ts)`,
  'stock.reserved': `the payment service never answered stock.reserved: it was stopped, or its consumer is not handling deliveries (${WHERE}/consumer.ts)`,
  'stock.rejected': `stock.rejected arrived and the order was not rejected: reactAsOrder must reject a PENDING order on stock.rejected and publish order.rejected (${WHERE}/order-saga.ts)`,
  'payment.completed': `payment.completed arrived and the order was not approved: reactAsOrder must approve a PENDING order on it and publish order.approved (${WHERE}/order-saga.ts)`,
  'payment.failed': `payment.failed arrived and the stock was never released: the inventory service compensates its step with releaseStock (${WHERE}/inventory.ts)`,
  'stock.released': `stock.released arrived (the compensation is done) and the order was not rejected: reactAsOrder must reject a PENDING order on it (${WHERE}/order-saga.ts)`,
};

interface LoggedEvent {
  type: string;
  eventId: string;
  orderId: string;
  reason?: string;
  /** The message exactly as it was published, to publish again as a duplicate. */
  content: Buffer;
}

/**
 * The check's own queue on the saga's exchange, bound to `#`: every event any service publishes,
 * in the order the broker routed them.
 */
class EventLog {
  readonly entries: LoggedEvent[] = [];

  add(message: ConsumeMessage): void {
    let body: Partial<LoggedEvent> = {};
    try {
      body = JSON.parse(message.content.toString('utf8')) as Partial<LoggedEvent>;
    } catch {
      // The malformed messages the check publishes itself.
    }
    this.entries.push({
      type: String(body.type ?? message.fields.routingKey),
      eventId: String(body.eventId ?? ''),
      orderId: String(body.orderId ?? ''),
      reason: typeof body.reason === 'string' ? body.reason : undefined,
      content: message.content,
    });
  }

  /** The order's events, each once (a republished event keeps its id), in the order they came. */
  of(orderId: string): LoggedEvent[] {
    const seen = new Set<string>();
    return this.entries.filter((entry) => entry.orderId === orderId && !seen.has(entry.eventId) && seen.add(entry.eventId));
  }

  types(orderId: string): string[] {
    return this.of(orderId).map((entry) => entry.type);
  }

  /** Distinct events of one type for the order. */
  count(orderId: string, type: string): number {
    return this.of(orderId).filter((entry) => entry.type === type).length;
  }

  find(orderId: string, type: string): LoggedEvent | undefined {
    return this.of(orderId).find((entry) => entry.type === type);
  }
}

/**
 * One deployment of the saga for one requirement: an exchange and three queues of its own, the
 * order service's schema (the `pg` fixture) and two more for inventory and payments, the check's
 * event log, and the three services as processes of their own.
 */
class Saga {
  readonly exchange: string;
  readonly queues: Record<ServiceKey, string>;
  readonly db: Record<ServiceKey, PgTestKit>;
  readonly log = new EventLog();
  readonly processes: Partial<Record<ServiceKey, LessonProcess>> = {};
  orderUrl = '';
  private publisher: ConfirmChannel | undefined;
  private readonly held = new Set<number>();
  /** Services stopped on purpose: their exit is not a failure. */
  private readonly stopping = new Set<ServiceKey>();

  private constructor(private readonly fixtures: SagaFixtures) {
    const { unique, rabbit } = fixtures;
    this.exchange = rabbit.exchange(unique('saga'));
    this.queues = {
      orders: rabbit.queue(unique('saga-orders')),
      inventory: rabbit.queue(unique('saga-inventory')),
      payments: rabbit.queue(unique('saga-payments')),
    };
    const server = serviceUrl('postgres');
    this.db = { orders: fixtures.pg, inventory: new PgTestKit(server, 'inventory'), payments: new PgTestKit(server, 'payments') };
  }

  static async create(fixtures: SagaFixtures): Promise<Saga> {
    const saga = new Saga(fixtures);
    fixtures.onTestFinished(async () => {
      for (const pid of saga.held) resume(pid);
      // The services first, while their schemas and queues still exist.
      await fixtures.procs.teardown();
      await Promise.all([saga.db.inventory.teardown(), saga.db.payments.teardown()]);
    });
    await Promise.all(Object.values(saga.db).map((kit) => kit.ready()));
    const { rabbit, unique } = fixtures;
    const channel = await rabbit.channel(await rabbit.connect());
    await channel.assertExchange(saga.exchange, 'topic', { durable: true });
    const observer = rabbit.queue(unique('saga-observer'));
    // Exclusive: RabbitMQ 4.3 refuses a queue that is neither durable nor exclusive.
    await channel.assertQueue(observer, { durable: false, exclusive: true, arguments: CLASSIC_QUEUE });
    await channel.bindQueue(observer, saga.exchange, '#');
    await channel.consume(observer, (message) => message && saga.log.add(message), { noAck: true });
    return saga;
  }

  private env(key: ServiceKey): Record<string, string> {
    return {
      ...serviceEnv('rabbitmq'),
      DATABASE_URL: this.db[key].url,
      SAGA_EXCHANGE: this.exchange,
      ORDER_QUEUE: this.queues.orders,
      INVENTORY_QUEUE: this.queues.inventory,
      PAYMENT_QUEUE: this.queues.payments,
    };
  }

  async startOrders(deadlineMs = NO_DEADLINE_MS): Promise<void> {
    const service = await this.fixtures.procs.startHttp(SLUG, SERVICE_FILES.orders, {
      env: { ...this.env('orders'), ORDER_DEADLINE_MS: String(deadlineMs) },
      name: 'order-service',
      readyPath: '/health',
      timeoutMs: START_WITHIN_MS,
    });
    this.processes.orders = service.process;
    this.orderUrl = service.url;
  }

  async startInventory(): Promise<LessonProcess> {
    return this.startWorker('inventory', {});
  }

  async startPayments(settings: { limitCents?: number; latencyMs?: number } = {}): Promise<LessonProcess> {
    return this.startWorker('payments', {
      PAYMENT_LIMIT_CENTS: String(settings.limitCents ?? 100_000),
      PAYMENT_LATENCY_MS: String(settings.latencyMs ?? 0),
    });
  }

  async startAll(settings: { deadlineMs?: number; limitCents?: number; latencyMs?: number } = {}): Promise<void> {
    await Promise.all([this.startOrders(settings.deadlineMs), this.startInventory(), this.startPayments(settings)]);
  }

  private async startWorker(key: 'inventory' | 'payments', extra: Record<string, string>): Promise<LessonProcess> {
    const name = key === 'inventory' ? 'inventory-service' : 'payment-service';
    const started = this.fixtures.procs.start(SLUG, SERVICE_FILES[key], { env: { ...this.env(key), ...extra }, name });
    await started.waitForOutput(new RegExp(`\\[${name}\\] ready`), 'reported it was ready', START_WITHIN_MS);
    this.processes[key] = started;
    return started;
  }

  /** SIGSTOP: the process is alive, its connections open, and it does nothing until resumed. */
  hold(key: ServiceKey): () => void {
    const pid = this.processes[key]!.pid!;
    process.kill(pid, 'SIGSTOP');
    this.held.add(pid);
    return () => {
      this.held.delete(pid);
      resume(pid);
    };
  }

  /** Sets the stock of each SKU (the inventory service must have created its tables). */
  async stock(levels: Record<string, number>): Promise<void> {
    for (const [sku, available] of Object.entries(levels)) {
      await this.db.inventory.query('INSERT INTO products (sku, available) VALUES ($1, $2) ON CONFLICT (sku) DO UPDATE SET available = EXCLUDED.available', [sku, available]);
    }
  }

  async available(...skus: string[]): Promise<Record<string, number | undefined>> {
    const rows = await this.db.inventory.query<{ sku: string; available: number }>('SELECT sku, available FROM products WHERE sku = ANY($1::text[])', [skus]);
    return Object.fromEntries(skus.map((sku) => [sku, rows.find((row) => row.sku === sku)?.available]));
  }

  async reservation(orderId: string): Promise<{ status: string; lines: Array<{ sku: string; quantity: number }> } | undefined> {
    const [row] = await this.db.inventory.query<{ status: string }>('SELECT status FROM reservations WHERE order_id = $1', [orderId]);
    if (!row) return undefined;
    const lines = await this.db.inventory.query<{ sku: string; quantity: number }>('SELECT sku, quantity FROM reservation_lines WHERE order_id = $1 ORDER BY sku', [orderId]);
    return { status: row.status, lines };
  }

  async payments(orderId: string): Promise<Array<{ status: string; amount_cents: number | null }>> {
    return this.db.payments.query('SELECT status, amount_cents FROM payments WHERE order_id = $1', [orderId]);
  }

  /** POST /orders, which must answer 202 with the order PENDING, within ANSWER_WITHIN_MS. */
  async placeOrder(lines: OrderLine[], amountCents: number, what = 'while every service was running'): Promise<{ orderId: string; answeredInMs: number }> {
    const started = performance.now();
    let response: Response;
    try {
      response = await fetch(`${this.orderUrl}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ customerId: 'customer-ada', lines, amountCents }),
        signal: AbortSignal.timeout(ANSWER_WITHIN_MS),
      });
    } catch (error) {
      const timedOut = error instanceof Error && error.name === 'TimeoutError';
      throw new Error(
        timedOut
          ? `POST /orders did not answer within ${ANSWER_WITHIN_MS / 1000} s ${what}. Accepting an order is one local transaction ` +
              '(the order, PENDING, and order.placed in the outbox); the order service must never wait for another service ' +
              `to answer, or an outage of one service becomes an outage of ordering (${WHERE}/order-saga.ts, placeOrder)`
          : `POST /orders failed: ${String(error)} (${WHERE}/order-service.ts)`,
        { cause: error },
      );
    }
    const answeredInMs = performance.now() - started;
    const text = await response.text();
    const todo = /TODO: (\w+)/.exec(text);
    if (todo) throw todoError(todo[1]!, text.slice(todo.index));
    expect(response.status, `POST /orders answered ${response.status} ${text} ${what}; it should accept the order with 202 (${WHERE}/order-saga.ts, placeOrder)`).toBe(202);
    const body = JSON.parse(text) as { orderId?: unknown; status?: unknown };
    expect(body.status, `POST /orders answered ${text}: a new order is PENDING until its saga settles (${WHERE}/order-saga.ts, placeOrder)`).toBe('PENDING');
    expect(typeof body.orderId, `POST /orders answered ${text} without the order's id (${WHERE}/order-saga.ts, placeOrder)`).toBe('string');
    return { orderId: body.orderId as string, answeredInMs };
  }

  async status(orderId: string): Promise<{ status: Status; reason: string | null } | undefined> {
    const [row] = await this.db.orders.query<{ status: Status; reason: string | null }>('SELECT status, reason FROM orders WHERE order_id = $1', [orderId]);
    return row;
  }

  /** GET /orders/:id, the customer's view. */
  async fetchOrder(orderId: string): Promise<{ status?: string; reason?: string | null }> {
    const response = await fetch(`${this.orderUrl}/orders/${orderId}`, { signal: AbortSignal.timeout(ANSWER_WITHIN_MS) });
    expect(response.status, `GET /orders/${orderId} answered ${response.status} (${WHERE}/order-service.ts)`).toBe(200);
    return (await response.json()) as { status?: string; reason?: string | null };
  }

  /** Waits for the order to reach a status; on failure, says where its saga stopped and which file acts next. */
  async waitForStatus(orderId: string, status: Status, context: string, timeoutMs = SETTLE_MS): Promise<void> {
    try {
      await vi.waitFor(async () => {
        this.throwTodo();
        expect((await this.status(orderId))?.status).toBe(status);
      }, { timeout: timeoutMs, interval: 50 });
    } catch (error) {
      if (error instanceof Error && error.message.startsWith('TODO: ')) throw error;
      const now = await this.status(orderId);
      const types = this.log.types(orderId);
      const last = types.at(-1) ?? 'none';
      const next = now?.status === 'PENDING' ? `\nWhere it stopped: ${NEXT_STEP[last] ?? `after ${last}`}` : '';
      throw new Error(
        `${context}: order ${orderId} should be ${status} and is ${now ? `${now.status}${now.reason ? ` (${now.reason})` : ''}` : 'not in the orders table'} ` +
          `after ${timeoutMs / 1000} s. Its saga so far: ${types.join(' → ') || '(no event at all)'}.${next}`,
        { cause: error },
      );
    }
  }

  /** Waits for an event of the order's saga to be published. */
  async waitForEvent(orderId: string, type: string, context: string, timeoutMs = SETTLE_MS): Promise<LoggedEvent> {
    try {
      return await vi.waitFor(() => {
        this.throwTodo();
        const found = this.log.find(orderId, type);
        if (!found) throw new Error('not yet');
        return found;
      }, { timeout: timeoutMs, interval: 25 });
    } catch (error) {
      if (error instanceof Error && error.message.startsWith('TODO: ')) throw error;
      const types = this.log.types(orderId);
      const last = types.at(-1) ?? 'none';
      throw new Error(
        `${context}: ${type} was never published for order ${orderId} (waited ${timeoutMs / 1000} s). ` +
          `Its saga so far: ${types.join(' → ') || '(no event at all)'}.\nWhere it stopped: ${NEXT_STEP[last] ?? `after ${last}`}`,
        { cause: error },
      );
    }
  }

  /** The check plays a service: publishes an event on the saga's exchange, confirmed by the broker. */
  async publish(event: Record<string, unknown> & { type: string }): Promise<void> {
    await this.publishRaw(event.type, Buffer.from(JSON.stringify(event)), typeof event.eventId === 'string' ? event.eventId : randomUUID());
  }

  async publishRaw(routingKey: string, content: Buffer, messageId: string = randomUUID()): Promise<void> {
    this.publisher ??= await this.fixtures.rabbit.confirmChannel();
    this.publisher.publish(this.exchange, routingKey, content, { persistent: true, contentType: 'application/json', messageId });
    await this.publisher.waitForConfirms();
  }

  /**
   * Returns once the inventory service has handled everything published so far: it handles its
   * queue in order, one event at a time, so when an order placed now is answered, so is all before.
   */
  async inventoryCaughtUp(context: string): Promise<string> {
    const barrier = placed(randomUUID(), [{ sku: 'CHECK-BARRIER', quantity: 1 }], 100);
    await this.publish(barrier);
    await this.waitForEvent(barrier.orderId, 'stock.reserved', `${context} (the check's own marker order, placed after it)`);
    return barrier.orderId;
  }

  /** A lesson process that exited, or printed a TODO, fails the requirement at once with the reason. */
  throwTodo(): void {
    for (const [key, started] of Object.entries(this.processes)) {
      const output = started.output();
      const todo = /\bTODO: ([\w.]+)/.exec(output);
      if (todo) throw todoError(todo[1]!, output.slice(todo.index));
      if (!started.running && !this.stopping.has(key as ServiceKey)) {
        throw new Error(`${started.name} exited unexpectedly (${WHERE}/${SERVICE_FILES[key as ServiceKey]}). Its output was:\n${started.output().trim().split('\n').slice(-20).map((l) => `  ${l}`).join('\n')}`);
      }
    }
  }

  /** Stops a service on purpose (SIGTERM, or SIGKILL for a crash). */
  async stop(key: ServiceKey, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const started = this.processes[key]!;
    this.stopping.add(key);
    await (signal === 'SIGKILL' ? started.kill('SIGKILL') : started.stop());
  }

  /** Starts a stopped service again (a restart: the same queue and schema). */
  async restart(key: 'inventory' | 'payments', settings: { latencyMs?: number } = {}): Promise<void> {
    await (key === 'payments' ? this.startPayments(settings) : this.startInventory());
    this.stopping.delete(key);
  }
}

type SagaFixtures = Pick<CheckFixtures, 'pg' | 'rabbit' | 'procs' | 'unique'> & { onTestFinished: (fn: () => Promise<void> | void) => void };

function resume(pid: number): void {
  try {
    process.kill(pid, 'SIGCONT');
  } catch {
    // Already gone.
  }
}

function event(type: string, orderId: string, facts: Record<string, unknown> = {}): Record<string, unknown> & { type: string; eventId: string; orderId: string } {
  return { type, eventId: randomUUID(), orderId, occurredAt: new Date().toISOString(), ...facts };
}

function placed(orderId: string, lines: OrderLine[], amountCents: number) {
  return event('order.placed', orderId, { customerId: 'customer-grace', lines, amountCents });
}

describe.concurrent('17 saga-choreography', () => {
  test('the happy path ends APPROVED: order.placed → stock.reserved → payment.completed → order.approved, the stock taken once and the card charged once', async ({ pg, rabbit, procs, unique, onTestFinished }) => {
    const saga = await Saga.create({ pg, rabbit, procs, unique, onTestFinished });
    await saga.startAll();
    await saga.stock({ 'SKU-MUG': 3, 'SKU-TEE': 5 });

    // The whole stock of mugs: the reservation may take the last one.
    const { orderId } = await saga.placeOrder([{ sku: 'SKU-MUG', quantity: 3 }, { sku: 'SKU-TEE', quantity: 1 }], 4_500);
    await saga.waitForStatus(orderId, 'APPROVED', 'an order with enough stock and a small amount');
    await saga.waitForEvent(orderId, 'order.approved', 'the approved order');

    expect(saga.log.types(orderId), 'the events of a successful saga, in order, each once ' +
      `(${WHERE}/order-saga.ts, inventory.ts)`).toEqual(['order.placed', 'stock.reserved', 'payment.completed', 'order.approved']);
    expect((await saga.fetchOrder(orderId)).status, `GET /orders/${orderId} should show the order APPROVED (${WHERE}/order-saga.ts)`).toBe('APPROVED');
    expect(await saga.available('SKU-MUG', 'SKU-TEE'), 'the stock should be taken once for each line: 3 of 3 mugs, 1 of 5 tees ' +
      `(${WHERE}/inventory.ts, reserveStock)`).toEqual({ 'SKU-MUG': 0, 'SKU-TEE': 4 });
    expect(await saga.reservation(orderId), `the inventory schema should hold the order's reservation, RESERVED, line by line (${WHERE}/inventory.ts, reserveStock)`)
      .toEqual({ status: 'RESERVED', lines: [{ sku: 'SKU-MUG', quantity: 3 }, { sku: 'SKU-TEE', quantity: 1 }] });
    expect(await saga.payments(orderId), 'the payment schema should hold one charge of the order\'s amount').toEqual([{ status: 'CHARGED', amount_cents: 4_500 }]);
  });

  test('a payment failure is compensated in reverse order: the stock is released before the order is rejected, and the order ends REJECTED with no reservation left', async ({ pg, rabbit, procs, unique, onTestFinished }) => {
    const saga = await Saga.create({ pg, rabbit, procs, unique, onTestFinished });
    await saga.startAll({ limitCents: 10_000 });
    await saga.stock({ 'SKU-MUG': 2, 'CHECK-BARRIER': 1_000 });

    // Payment held until the stock is reserved, then the inventory held while the payment fails:
    // the compensation cannot happen until the inventory service is resumed.
    const resumePayments = saga.hold('payments');
    const { orderId } = await saga.placeOrder([{ sku: 'SKU-MUG', quantity: 2 }], 25_000);
    await saga.waitForEvent(orderId, 'stock.reserved', 'an order over the card limit, with enough stock');
    const resumeInventory = saga.hold('inventory');
    resumePayments();
    await saga.waitForEvent(orderId, 'payment.failed', 'an order of 25000 cents, over the payment service\'s limit of 10000');
    await sleep(1_000);
    const meanwhile = await saga.status(orderId);
    expect(meanwhile?.status, 'the payment failed while the inventory service was held, so the order\'s stock is still set aside. ' +
      `The order was ${meanwhile?.status}${meanwhile?.reason ? ` (${meanwhile.reason})` : ''}: a saga is over only when its compensations are ` +
      'done, in reverse order: first the stock is released (stock.released), then the order is rejected. The order service should ' +
      `react to stock.released, not to payment.failed (${WHERE}/order-saga.ts)`).toBe('PENDING');
    resumeInventory();

    await saga.waitForStatus(orderId, 'REJECTED', 'a failed payment, once the inventory service released the stock');
    await saga.waitForEvent(orderId, 'order.rejected', 'the rejected order');
    expect(saga.log.types(orderId), 'the compensation runs in reverse order of the steps: payment failed, so the stock is released, ' +
      `then the order is rejected (${WHERE}/inventory.ts, releaseStock; ${WHERE}/order-saga.ts)`)
      .toEqual(['order.placed', 'stock.reserved', 'payment.failed', 'stock.released', 'order.rejected']);
    expect((await saga.status(orderId))?.reason, `the order's reason should say why the payment failed, from stock.released (${WHERE}/order-saga.ts)`).toMatch(/declin|limit|payment/i);

    // order.rejected reaches the inventory service too: releasing again must give back nothing more.
    await saga.inventoryCaughtUp('after the order was rejected');
    expect(await saga.available('SKU-MUG'), 'after the compensation both mugs should be back on the shelf, once: releasing an order ' +
      `already released must be a no-op (${WHERE}/inventory.ts, releaseStock)`).toEqual({ 'SKU-MUG': 2 });
    expect((await saga.reservation(orderId))?.status, `no reservation may be left for a rejected order (${WHERE}/inventory.ts, releaseStock)`).toBe('RELEASED');
    expect((await saga.payments(orderId)).map((p) => p.status), 'the declined payment charged nothing').toEqual(['DECLINED']);
  });

  test('a stock failure rejects the order without charging anything and leaves no stock reserved, not even for the lines that were in stock', async ({ pg, rabbit, procs, unique, onTestFinished }) => {
    const saga = await Saga.create({ pg, rabbit, procs, unique, onTestFinished });
    await saga.startAll();
    await saga.stock({ 'SKU-MUG': 5, 'SKU-TEE': 1 });

    // The mugs are in stock, the tees are not: all or nothing.
    const { orderId } = await saga.placeOrder([{ sku: 'SKU-MUG', quantity: 2 }, { sku: 'SKU-TEE', quantity: 2 }], 3_000);
    await saga.waitForStatus(orderId, 'REJECTED', 'an order for 2 tees when 1 is in stock');
    await saga.waitForEvent(orderId, 'order.rejected', 'the rejected order');
    expect(saga.log.types(orderId), 'a failed first step has nothing to compensate: the order is rejected and payment never hears of it ' +
      `(${WHERE}/inventory.ts, reserveStock; ${WHERE}/order-saga.ts)`).toEqual(['order.placed', 'stock.rejected', 'order.rejected']);
    const { reason } = (await saga.status(orderId))!;
    expect(reason, `the order's reason should be the inventory's, from stock.rejected (${WHERE}/order-saga.ts)`).toBeTruthy();
    expect(reason).not.toBe('timeout');
    expect(await saga.available('SKU-MUG', 'SKU-TEE'), 'a reservation takes the stock of every line or of none: the 2 mugs must not stay ' +
      `taken when the tees are short (${WHERE}/inventory.ts, reserveStock)`).toEqual({ 'SKU-MUG': 5, 'SKU-TEE': 1 });
    expect((await saga.reservation(orderId))?.status, `the order's stock must not be RESERVED (${WHERE}/inventory.ts, reserveStock)`).not.toBe('RESERVED');

    // The payment service was there all along: a later order goes through it, so it had its chance.
    const later = await saga.placeOrder([{ sku: 'SKU-MUG', quantity: 1 }], 1_000);
    await saga.waitForStatus(later.orderId, 'APPROVED', 'a later order with enough stock');
    expect((await saga.payments(orderId)).filter((p) => p.status === 'CHARGED'), 'nothing may be charged for an order whose stock was rejected').toEqual([]);
    expect(saga.log.types(orderId).filter((type) => type.startsWith('payment.')), 'the payment service should never act on an order whose stock was rejected').toEqual([]);
  });

  test('a duplicate event does not reserve or charge twice', async ({ pg, rabbit, procs, unique, onTestFinished }) => {
    const saga = await Saga.create({ pg, rabbit, procs, unique, onTestFinished });
    await Promise.all([saga.startInventory(), saga.startPayments()]);
    await saga.stock({ 'SKU-MUG': 10, 'CHECK-BARRIER': 1_000 });

    // The check plays the order service.
    const order = placed(randomUUID(), [{ sku: 'SKU-MUG', quantity: 3 }], 2_000);
    await saga.publish(order);
    await saga.waitForEvent(order.orderId, 'payment.completed', 'an order the check published');
    const reserved = saga.log.find(order.orderId, 'stock.reserved')!;

    // The same events again, ids and all: what a redelivery after a lost ack looks like.
    await saga.publish(order);
    await saga.publish(order);
    await saga.publishRaw('stock.reserved', reserved.content, reserved.eventId);
    const marker = await saga.inventoryCaughtUp('after the duplicates');
    await saga.waitForEvent(marker, 'payment.completed', 'the check\'s marker order, published after the duplicates');

    expect(await saga.available('SKU-MUG'), 'order.placed was delivered three times with the same event id, and the stock should be taken ' +
      'once: 3 of 10 mugs. Record each event id in processed_events in the same transaction as its effect, and skip an id seen before ' +
      `(${WHERE}/consumer.ts, handleDelivery; ${WHERE}/inventory.ts, reserveStock)`).toEqual({ 'SKU-MUG': 7 });
    expect(await saga.reservation(order.orderId), 'one reservation, of 3 mugs').toEqual({ status: 'RESERVED', lines: [{ sku: 'SKU-MUG', quantity: 3 }] });
    expect(saga.log.count(order.orderId, 'stock.reserved'), 'the inventory service should announce the reservation once').toBe(1);
    expect(await saga.payments(order.orderId), 'stock.reserved was delivered twice with the same event id, and the card should be charged once ' +
      `(${WHERE}/consumer.ts, handleDelivery)`).toEqual([{ status: 'CHARGED', amount_cents: 2_000 }]);
    expect(saga.log.count(order.orderId, 'payment.completed'), `the payment service should announce the charge once (${WHERE}/consumer.ts)`).toBe(1);
  });

  test('with the payment service held, the order is observably PENDING after its stock is reserved, and is approved once payment resumes', async ({ pg, rabbit, procs, unique, onTestFinished }) => {
    const saga = await Saga.create({ pg, rabbit, procs, unique, onTestFinished });
    await saga.startAll();
    await saga.stock({ 'SKU-MUG': 4 });
    const resumePayments = saga.hold('payments');

    const { orderId } = await saga.placeOrder([{ sku: 'SKU-MUG', quantity: 1 }], 1_500, 'while the payment service was held (SIGSTOP)');
    await saga.waitForEvent(orderId, 'stock.reserved', 'an order placed while the payment service was held');
    expect((await saga.fetchOrder(orderId)).status, 'the stock is reserved and the payment is not done: GET /orders/:id should show the ' +
      `order PENDING (${WHERE}/order-saga.ts)`).toBe('PENDING');
    expect((await saga.status(orderId))?.status, 'the orders table should hold the order PENDING').toBe('PENDING');
    expect(await saga.available('SKU-MUG'), 'the stock is set aside while the payment is outstanding').toEqual({ 'SKU-MUG': 3 });

    resumePayments();
    await saga.waitForStatus(orderId, 'APPROVED', 'the payment service was resumed');
    await saga.waitForEvent(orderId, 'order.approved', 'the approved order');
    expect(saga.log.types(orderId)).toEqual(['order.placed', 'stock.reserved', 'payment.completed', 'order.approved']);
  });

  test('a compensation that arrives before the step it undoes, or twice, is a safe no-op, and the late step is refused', async ({ pg, rabbit, procs, unique, onTestFinished }) => {
    const saga = await Saga.create({ pg, rabbit, procs, unique, onTestFinished });
    await saga.startInventory();
    await saga.stock({ 'SKU-MUG': 4, 'CHECK-BARRIER': 1_000 });

    // The check plays the other services. Order early: its compensation comes first, twice, then its reservation.
    const early = randomUUID();
    await saga.publish(event('payment.failed', early, { reason: 'card declined' }));
    await saga.publish(event('order.rejected', early, { reason: 'timeout' }));
    await saga.publish(placed(early, [{ sku: 'SKU-MUG', quantity: 1 }], 900));
    // Order normal: reserved, then released twice.
    const normal = placed(randomUUID(), [{ sku: 'SKU-MUG', quantity: 2 }], 1_800);
    await saga.publish(normal);
    await saga.waitForEvent(normal.orderId, 'stock.reserved', 'an order placed after the early one');

    expect(saga.log.count(early, 'stock.reserved'), `order ${early} was released (twice) before it was placed, and its late reservation went ` +
      'through. A release that finds nothing reserved must leave a tombstone (a CANCELLED row), and reserveStock must refuse an order ' +
      `that has one (${WHERE}/inventory.ts)`).toBe(0);
    expect((await saga.reservation(early))?.status, `the early order's stock must not be RESERVED (${WHERE}/inventory.ts)`).not.toBe('RESERVED');
    expect(saga.log.count(early, 'stock.rejected'), 'the late reservation should be refused with stock.rejected, so the saga still gets ' +
      `an answer for every order.placed (${WHERE}/inventory.ts, reserveStock)`).toBe(1);
    expect(await saga.available('SKU-MUG'), 'releasing an order that reserved nothing must give back nothing, and the normal order took 2: ' +
      `4 - 2 = 2 mugs (${WHERE}/inventory.ts, releaseStock)`).toEqual({ 'SKU-MUG': 2 });

    await saga.publish(event('payment.failed', normal.orderId, { reason: 'card declined' }));
    await saga.publish(event('order.rejected', normal.orderId, { reason: 'card declined' }));
    await saga.inventoryCaughtUp('after the normal order was released twice');
    expect(await saga.available('SKU-MUG'), 'the normal order\'s 2 mugs should be given back once, although it was released twice: 4 mugs, ' +
      `not more (${WHERE}/inventory.ts, releaseStock)`).toEqual({ 'SKU-MUG': 4 });
    expect((await saga.reservation(normal.orderId))?.status, `a released reservation is RELEASED (${WHERE}/inventory.ts, releaseStock)`).toBe('RELEASED');
    expect(saga.log.count(normal.orderId, 'stock.released'), 'stock.released announces the compensation once').toBe(1);
  });

  test('no saga stays PENDING forever: past its deadline the order is rejected with reason timeout, its stock is released, and a late payment is refunded', async ({ pg, rabbit, procs, unique, onTestFinished }) => {
    const saga = await Saga.create({ pg, rabbit, procs, unique, onTestFinished });
    await saga.startAll({ deadlineMs: DEADLINE_MS });
    await saga.stock({ 'SKU-MUG': 3 });
    // The payment service hangs (held with SIGSTOP): nobody will settle the saga.
    const resumePayments = saga.hold('payments');

    const placedAt = performance.now();
    const { orderId } = await saga.placeOrder([{ sku: 'SKU-MUG', quantity: 2 }], 2_000, 'while the payment service was held');
    await saga.waitForEvent(orderId, 'stock.reserved', 'an order placed while the payment service was held');
    await saga.waitForStatus(orderId, 'REJECTED', `the payment service is held and the order service's deadline is ${DEADLINE_MS} ms ` +
      `(ORDER_DEADLINE_MS): rejectOverdueOrders must reject PENDING orders past their deadline (${WHERE}/order-saga.ts)`, DEADLINE_MS + SETTLE_MS);
    const rejectedAfterMs = performance.now() - placedAt;
    expect(rejectedAfterMs, `the order was rejected ${Math.round(rejectedAfterMs)} ms after it was placed, before its ${DEADLINE_MS} ms deadline ` +
      `(${WHERE}/order-saga.ts, placeOrder sets deadline_at)`).toBeGreaterThanOrEqual(DEADLINE_MS - 50);
    expect((await saga.status(orderId))?.reason, `a saga rejected by its deadline has the reason 'timeout' (${WHERE}/order-saga.ts)`).toBe('timeout');
    const rejected = await saga.waitForEvent(orderId, 'order.rejected', 'the timed-out order: the other services learn of it from order.rejected');
    expect(rejected.reason, 'order.rejected should carry the reason timeout').toBe('timeout');
    await saga.waitForEvent(orderId, 'stock.released', 'the order was rejected by its deadline, so the inventory service should release its stock');
    expect(await saga.available('SKU-MUG'), `the timed-out order's stock should be back on the shelf (${WHERE}/inventory.ts)`).toEqual({ 'SKU-MUG': 3 });

    // The payment service comes back and works through its queue: the late stock.reserved, then order.rejected.
    resumePayments();
    const late = await saga.placeOrder([{ sku: 'SKU-MUG', quantity: 1 }], 1_000);
    await saga.waitForStatus(late.orderId, 'APPROVED', 'an order placed after the payment service was resumed');
    expect((await saga.status(orderId))?.status, 'the late payment.completed of the timed-out order must not reopen it: APPROVED and REJECTED ' +
      `are final, and reactAsOrder changes only a PENDING order (${WHERE}/order-saga.ts)`).toBe('REJECTED');
    // Its queue held stock.reserved and then order.rejected of the timed-out order, both before the new order's events.
    const payment = (await saga.payments(orderId)).map((p) => p.status);
    expect(payment, 'the payment service should have heard of the timed-out order').not.toEqual([]);
    expect(payment, 'a charge for an order rejected meanwhile is refunded').not.toContain('CHARGED');
  });

  test('with the payment service stopped, orders are still accepted at once as PENDING, and complete when it comes back', async ({ pg, rabbit, procs, unique, onTestFinished }) => {
    const saga = await Saga.create({ pg, rabbit, procs, unique, onTestFinished });
    await saga.startAll();
    await saga.stock({ 'SKU-MUG': 10 });
    await saga.stop('payments');

    const orders: string[] = [];
    for (let i = 1; i <= 3; i++) {
      const { orderId } = await saga.placeOrder([{ sku: 'SKU-MUG', quantity: i }], 1_000 * i, 'while the payment service was stopped');
      orders.push(orderId);
    }
    for (const orderId of orders) await saga.waitForEvent(orderId, 'stock.reserved', 'an order placed while the payment service was stopped');
    for (const orderId of orders) {
      expect((await saga.fetchOrder(orderId)).status, `with the payment service stopped, order ${orderId} waits, PENDING (${WHERE}/order-saga.ts)`).toBe('PENDING');
    }

    await saga.restart('payments');
    for (const orderId of orders) await saga.waitForStatus(orderId, 'APPROVED', 'the payment service came back and its queue held the events it missed');
    for (const [i, orderId] of orders.entries()) {
      expect(await saga.payments(orderId), `order ${orderId} should be charged once`).toEqual([{ status: 'CHARGED', amount_cents: 1_000 * (i + 1) }]);
    }
    expect(await saga.available('SKU-MUG'), '1 + 2 + 3 mugs were ordered').toEqual({ 'SKU-MUG': 4 });
  });

  test('a service killed while handling an event does not lose the saga: the event is delivered again and handled once', async ({ pg, rabbit, procs, unique, onTestFinished }) => {
    const saga = await Saga.create({ pg, rabbit, procs, unique, onTestFinished });
    await Promise.all([saga.startOrders(), saga.startInventory(), saga.startPayments({ latencyMs: 60_000 })]);
    await saga.stock({ 'SKU-MUG': 5 });

    const { orderId } = await saga.placeOrder([{ sku: 'SKU-MUG', quantity: 1 }], 2_500);
    // The card network takes a minute: the payment service is in the middle of handling stock.reserved.
    try {
      await saga.processes.payments!.waitForOutput(new RegExp(`charging order ${orderId}`), `started charging order ${orderId}`, SETTLE_MS);
    } catch (error) {
      // stock.reserved never came: a TODO in another service is the reason, if there is one.
      saga.throwTodo();
      throw error;
    }
    await saga.stop('payments', 'SIGKILL');
    await saga.restart('payments', { latencyMs: 0 });

    await saga.waitForStatus(orderId, 'APPROVED', 'the payment service was killed (SIGKILL) while charging and started again. Its ' +
      'stock.reserved should have come back to it: acknowledge a message only after the transaction with its effects and its ' +
      'processed_events row has committed, and insert that row inside the same transaction, so a crash leaves neither ' +
      `(${WHERE}/consumer.ts, handleDelivery)`);
    expect(await saga.payments(orderId), 'the order should be charged once').toEqual([{ status: 'CHARGED', amount_cents: 2_500 }]);
    expect(saga.log.count(orderId, 'payment.completed'), 'payment.completed should be published once').toBe(1);
  });

  test('a malformed event is rejected without requeueing, and the service goes on with the next saga', async ({ pg, rabbit, procs, unique, onTestFinished }) => {
    const saga = await Saga.create({ pg, rabbit, procs, unique, onTestFinished });
    const inventory = await saga.startInventory();
    await saga.stock({ 'SKU-MUG': 3 });

    await saga.publishRaw('order.placed', Buffer.from('{"type": "order.placed", "orderId": '));
    await saga.publish({ ...placed(randomUUID(), [{ sku: 'SKU-MUG', quantity: 0 }], 100), eventId: 'not-a-uuid' });
    const order = placed(randomUUID(), [{ sku: 'SKU-MUG', quantity: 1 }], 1_000);
    await saga.publish(order);

    await saga.waitForEvent(order.orderId, 'stock.reserved', 'a valid order.placed published after two malformed messages. If the ' +
      'malformed ones are requeued they come straight back, ahead of it, forever; if one makes handleDelivery throw, it is never ' +
      `settled and nothing more is delivered. Reject a message that cannot be parsed with channel.nack(message, false, false) (${WHERE}/consumer.ts)`);
    expect(inventory.running, 'the inventory service should still be running').toBe(true);
    expect(await saga.available('SKU-MUG'), 'only the valid order takes stock').toEqual({ 'SKU-MUG': 2 });
    await vi.waitFor(async () => expect(await rabbit.readyMessages(saga.queues.inventory), 'the malformed messages should be gone from the ' +
      `inventory queue, not back in it (${WHERE}/consumer.ts)`).toBe(0), { timeout: 2_000, interval: 50 });
  });
});
