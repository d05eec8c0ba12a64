import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { newEvent } from '../../platform/events.ts';
import { redisUrl, testDatabase, uniqueSuffix, type TestDatabase } from '../../testing/harness.ts';
import { createEmailQueue, onEvent, sendEmail, type EmailQueue } from './emails.ts';

let db: TestDatabase;
let queue: EmailQueue;

beforeEach(async () => {
  db = await testDatabase(join(import.meta.dirname, 'migrations'));
  queue = createEmailQueue(redisUrl(), `test-${uniqueSuffix()}`);
  void queue.process((job) => sendEmail(db.pool, String(job.id), job.data));
});

afterEach(async () => {
  await queue.obliterate({ force: true });
  await queue.close();
  await db.close();
});

async function sentEmails(): Promise<Array<{ kind: string; to_address: string }>> {
  return (await db.pool.query<{ kind: string; to_address: string }>('SELECT kind, to_address FROM sent_emails ORDER BY id')).rows;
}

describe('notifications service', () => {
  test('a new user gets a welcome email, and an order confirmation its email, as jobs', async () => {
    const userId = randomUUID();
    await onEvent(db.pool, queue, newEvent('UserRegistered', { userId, email: 'ada@example.com', name: 'Ada' }, undefined));
    await onEvent(db.pool, queue, newEvent('OrderConfirmed', { orderId: randomUUID(), userId, totalCents: 900 }, undefined));
    await vi.waitFor(async () => expect(await sentEmails()).toHaveLength(2), { timeout: 15_000 });
    expect(await sentEmails()).toEqual([
      { kind: 'welcome', to_address: 'ada@example.com' },
      { kind: 'order-confirmed', to_address: 'ada@example.com' },
    ]);
  });

  test('an event delivered twice sends one email', async () => {
    const userId = randomUUID();
    const registered = newEvent('UserRegistered', { userId, email: 'grace@example.com', name: 'Grace' }, undefined);
    await onEvent(db.pool, queue, registered);
    await onEvent(db.pool, queue, registered);
    await vi.waitFor(async () => expect(await sentEmails()).toHaveLength(1), { timeout: 15_000 });
    expect((await queue.getJobCounts()).waiting).toBe(0);
    expect(await sentEmails()).toHaveLength(1);
  });
});
