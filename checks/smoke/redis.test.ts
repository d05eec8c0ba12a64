import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../support/names.ts';
import { serviceUrl } from '../support/services.ts';

/** Smoke check: the Redis the course uses is a real Redis with Streams and consumer groups. */
describe('Redis smoke check', () => {
  let redis: Redis;
  const stream = uniqueName('smoke-signups');
  const group = uniqueName('smoke-mailers');

  beforeAll(() => {
    redis = new Redis(serviceUrl('redis'), { maxRetriesPerRequest: 2 });
  });

  afterAll(async () => {
    await redis.del(stream).catch(() => {});
    redis.disconnect();
  });

  it('round-trips an entry through a stream consumer group (XADD, XREADGROUP, XACK)', async () => {
    const info = await redis.info('server');
    expect(info, `the server at ${serviceUrl('redis')} should report a redis_version`).toMatch(/redis_version:\d+\.\d+/);

    await redis.xgroup('CREATE', stream, group, '$', 'MKSTREAM');
    const id = await redis.xadd(stream, '*', 'type', 'user.signed-up', 'email', 'ada@example.com');
    expect(id, 'XADD should return the id the server gave the entry (<ms>-<seq>)').toMatch(/^\d+-\d+$/);

    const reply = (await redis.xreadgroup('GROUP', group, 'mailer-1', 'COUNT', 10, 'BLOCK', 5_000, 'STREAMS', stream, '>')) as
      | Array<[string, Array<[string, string[]]>]>
      | null;
    const entries = reply?.[0]?.[1] ?? [];
    expect(entries, 'XREADGROUP should deliver the one new entry to the group').toEqual([
      [id, ['type', 'user.signed-up', 'email', 'ada@example.com']],
    ]);

    const pendingBefore = (await redis.xpending(stream, group)) as [number, ...unknown[]];
    expect(pendingBefore[0], 'a delivered, unacknowledged entry should be pending for the group').toBe(1);
    expect(await redis.xack(stream, group, id!), 'XACK should acknowledge exactly one entry').toBe(1);
    const pendingAfter = (await redis.xpending(stream, group)) as [number, ...unknown[]];
    expect(pendingAfter[0], 'nothing should be pending after XACK').toBe(0);
  });
});
