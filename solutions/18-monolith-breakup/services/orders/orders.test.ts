import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { newEvent } from '../../platform/events.ts';
import { call, outboxEvents, serve, testDatabase, type Served, type TestDatabase } from '../../testing/harness.ts';
import { createOrdersApp } from './app.ts';
import { confirmOrder } from './orders.ts';
import type { Order } from './queries.ts';

let db: TestDatabase;
let orders: Served;
const userId = randomUUID();

beforeEach(async () => {
  db = await testDatabase(join(import.meta.dirname, 'migrations'));
  orders = await serve(createOrdersApp(db.pool));
});

afterEach(async () => {
  await orders.close();
  await db.close();
});

async function place(quantity = 2): Promise<Order> {
  const placed = await call<Order>(orders.url, 'POST', '/orders', { lines: [{ sku: 'tea', quantity, unitPriceCents: 450 }] }, userId);
  expect(placed.status).toBe(201);
  return placed.body;
}

function paymentFor(order: Order) {
  return newEvent('PaymentCaptured', { paymentId: randomUUID(), orderId: order.id, userId, amountCents: order.totalCents }, 'request-1234');
}

describe('orders service', () => {
  test('placing an order stores it as placed, priced, with its OrderPlaced event', async () => {
    const order = await place(10);
    expect(order).toMatchObject({ userId, status: 'placed', totalCents: 4050 });
    expect(await outboxEvents(db.pool)).toMatchObject([{ type: 'OrderPlaced', data: { orderId: order.id, userId, totalCents: 4050 } }]);
    expect((await call<Order>(orders.url, 'GET', `/orders/${order.id}`, undefined, userId)).body).toEqual(order);
  });

  test('a PaymentCaptured confirms the order once, however often it is delivered', async () => {
    const order = await place();
    const payment = paymentFor(order);
    expect(await confirmOrder(db.pool, payment)).toBe(true);
    expect(await confirmOrder(db.pool, payment)).toBe(false);
    expect((await call<Order>(orders.url, 'GET', `/orders/${order.id}`, undefined, userId)).body.status).toBe('confirmed');
    const confirmed = (await outboxEvents(db.pool)).filter((event) => event.type === 'OrderConfirmed');
    expect(confirmed).toMatchObject([{ requestId: 'request-1234', data: { orderId: order.id, userId, totalCents: order.totalCents } }]);
  });

  test('an invalid order is refused without a trace', async () => {
    expect((await call(orders.url, 'POST', '/orders', { lines: [] }, userId)).status).toBe(400);
    expect((await call(orders.url, 'POST', '/orders', { lines: [{ sku: 'tea', quantity: 0, unitPriceCents: 1 }] }, userId)).status).toBe(400);
    expect((await call(orders.url, 'POST', '/orders', { lines: [{ sku: 'tea', quantity: 1, unitPriceCents: 1 }] })).status).toBe(401);
    expect(await outboxEvents(db.pool)).toEqual([]);
  });
});
