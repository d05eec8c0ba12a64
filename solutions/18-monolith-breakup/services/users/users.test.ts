import { join } from 'node:path';
import { jwtVerify } from 'jose';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { tokenSettings } from '../../platform/config.ts';
import { call, outboxEvents, serve, testDatabase, type Served, type TestDatabase } from '../../testing/harness.ts';
import { createUsersApp } from './app.ts';
import type { User } from './users.ts';

const tokens = tokenSettings({});
let db: TestDatabase;
let users: Served;

beforeEach(async () => {
  db = await testDatabase(join(import.meta.dirname, 'migrations'));
  users = await serve(createUsersApp(db.pool, tokens));
});

afterEach(async () => {
  await users.close();
  await db.close();
});

describe('users service', () => {
  test('signing up stores the user and its UserRegistered event together', async () => {
    const created = await call<User>(users.url, 'POST', '/users', { email: 'Ada@Example.com', name: 'Ada', password: 'correct horse' });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ id: expect.any(String), email: 'ada@example.com', name: 'Ada' });
    expect(await outboxEvents(db.pool)).toMatchObject([{ type: 'UserRegistered', data: { userId: created.body.id, email: 'ada@example.com', name: 'Ada' } }]);
  });

  test('an email already registered is refused, and nothing is announced', async () => {
    await call(users.url, 'POST', '/users', { email: 'ada@example.com', name: 'Ada', password: 'correct horse' });
    expect((await call(users.url, 'POST', '/users', { email: 'ada@example.com', name: 'Ada', password: 'correct horse' })).status).toBe(409);
    expect(await outboxEvents(db.pool)).toHaveLength(1);
    expect((await call(users.url, 'POST', '/users', { email: 'not-an-email', name: 'X', password: 'correct horse' })).status).toBe(400);
  });

  test('signing in issues a token the gateway can verify', async () => {
    const created = await call<User>(users.url, 'POST', '/users', { email: 'ada@example.com', name: 'Ada', password: 'correct horse' });
    const session = await call<{ token: string }>(users.url, 'POST', '/sessions', { email: 'ada@example.com', password: 'correct horse' });
    const { payload } = await jwtVerify(session.body.token, tokens.secret, { issuer: tokens.issuer, audience: tokens.audience });
    expect(payload.sub).toBe(created.body.id);
    expect((await call(users.url, 'POST', '/sessions', { email: 'ada@example.com', password: 'wrong password' })).status).toBe(401);
    expect((await call(users.url, 'GET', `/users/${created.body.id}`, undefined, created.body.id)).body).toEqual(created.body);
  });
});
