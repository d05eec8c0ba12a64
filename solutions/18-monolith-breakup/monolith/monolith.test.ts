import { join } from 'node:path';
import { jwtVerify } from 'jose';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { tokenSettings } from '../platform/config.ts';
import { call, serve, testDatabase, type Served, type TestDatabase } from '../testing/harness.ts';
import { createMonolithApp } from './app.ts';
import type { Order, Payment, User } from './shop.ts';

const tokens = tokenSettings({});
let db: TestDatabase;
let shop: Served;

beforeEach(async () => {
  db = await testDatabase(join(import.meta.dirname, 'migrations'));
  shop = await serve(createMonolithApp(db.pool, tokens));
});

afterEach(async () => {
  await shop.close();
  await db.close();
});

async function signUp(email = 'ada@example.com'): Promise<User> {
  const created = await call<User>(shop.url, 'POST', '/users', { email, name: 'Ada', password: 'correct horse' });
  expect(created.status).toBe(201);
  return created.body;
}

describe('monolith', () => {
  test('signing up stores the user and sends the welcome email in the same request', async () => {
    const user = await signUp();
    const { rows } = await db.pool.query('SELECT kind, to_address FROM emails WHERE user_id = $1', [user.id]);
    expect(rows).toEqual([{ kind: 'welcome', to_address: 'ada@example.com' }]);
    expect((await call(shop.url, 'POST', '/users', { email: 'ADA@example.com', name: 'Ada 2', password: 'another one' })).status).toBe(409);
  });

  test('signing in returns a token for the user, and refuses a wrong password', async () => {
    const user = await signUp();
    const session = await call<{ token: string }>(shop.url, 'POST', '/sessions', { email: 'ada@example.com', password: 'correct horse' });
    expect(session.status).toBe(201);
    const { payload } = await jwtVerify(session.body.token, tokens.secret, { issuer: tokens.issuer, audience: tokens.audience });
    expect(payload.sub).toBe(user.id);
    expect((await call(shop.url, 'POST', '/sessions', { email: 'ada@example.com', password: 'wrong' })).status).toBe(401);
  });

  test('placing an order pays, confirms and emails it before answering', async () => {
    const user = await signUp();
    const placed = await call<Order>(shop.url, 'POST', '/orders', { lines: [{ sku: 'tea', quantity: 10, unitPriceCents: 450 }] }, user.id);
    expect(placed.status).toBe(201);
    expect(placed.body).toMatchObject({ userId: user.id, status: 'confirmed', totalCents: 4050 });
    const payments = await call<Payment[]>(shop.url, 'GET', `/payments?userId=${user.id}`, undefined, user.id);
    expect(payments.body).toEqual([{ id: expect.any(String), orderId: placed.body.id, userId: user.id, amountCents: 4050, status: 'captured' }]);
    const { rows } = await db.pool.query('SELECT kind FROM emails WHERE user_id = $1 ORDER BY id', [user.id]);
    expect(rows.map((row: { kind: string }) => row.kind)).toEqual(['welcome', 'order-confirmed']);
  });

  test('a user reads only their own profile, orders and payments', async () => {
    const ada = await signUp('ada@example.com');
    const grace = await signUp('grace@example.com');
    const order = await call<Order>(shop.url, 'POST', '/orders', { lines: [{ sku: 'tea', quantity: 1, unitPriceCents: 450 }] }, ada.id);
    expect((await call(shop.url, 'GET', `/orders/${order.body.id}`, undefined, grace.id)).status).toBe(404);
    expect((await call(shop.url, 'GET', `/orders?userId=${ada.id}`, undefined, grace.id)).status).toBe(403);
    expect((await call(shop.url, 'GET', `/users/${ada.id}`, undefined, grace.id)).status).toBe(403);
    expect((await call(shop.url, 'GET', `/orders?userId=${ada.id}`)).status).toBe(401);
  });
});
