import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { newEvent } from '../../platform/events.ts';
import { call, outboxEvents, serve, testDatabase, type Served, type TestDatabase } from '../../testing/harness.ts';
import { createPaymentsApp } from './app.ts';
import { capturePayment } from './payments.ts';
import type { Payment } from './queries.ts';

let db: TestDatabase;
let payments: Served;
const userId = randomUUID();

beforeEach(async () => {
  db = await testDatabase(join(import.meta.dirname, 'migrations'));
  payments = await serve(createPaymentsApp(db.pool));
});

afterEach(async () => {
  await payments.close();
  await db.close();
});

function orderPlaced(totalCents = 900) {
  return newEvent('OrderPlaced', { orderId: randomUUID(), userId, totalCents, lines: [{ sku: 'tea', quantity: 2, unitPriceCents: 450 }] }, 'request-5678');
}

describe('payments service', () => {
  test('an OrderPlaced captures its payment and announces PaymentCaptured', async () => {
    const order = orderPlaced();
    expect(await capturePayment(db.pool, order)).toBe(true);
    const listed = await call<Payment[]>(payments.url, 'GET', `/payments?userId=${userId}`, undefined, userId);
    expect(listed.body).toEqual([{ id: expect.any(String), orderId: order.data.orderId, userId, amountCents: 900, status: 'captured' }]);
    expect(await outboxEvents(db.pool)).toMatchObject([
      { type: 'PaymentCaptured', requestId: 'request-5678', data: { orderId: order.data.orderId, userId, amountCents: 900, paymentId: listed.body[0]!.id } },
    ]);
  });

  test('the same OrderPlaced twice, even at once, captures one payment', async () => {
    const order = orderPlaced();
    const outcomes = await Promise.all([capturePayment(db.pool, order), capturePayment(db.pool, order)]);
    expect(outcomes.sort()).toEqual([false, true]);
    expect(await capturePayment(db.pool, order)).toBe(false);
    expect((await db.pool.query('SELECT 1 FROM payments')).rowCount).toBe(1);
    expect(await outboxEvents(db.pool)).toHaveLength(1);
  });
});
