import { describe, expect, test, vi } from '../support/fixtures.ts';

/**
 * Smoke check: the etcd the course uses is a real etcd, with leases that expire and prefix watches
 * that see the puts and deletes under their prefix and nothing else.
 */
describe('etcd smoke check', () => {
  test('a key under a 2 s lease is watched, read back, and gone once the lease expires', async ({ etcd }) => {
    const client = etcd.connect();
    const status = await client.maintenance.status();
    expect(status.version, 'the server should report an etcd version').toMatch(/^3\.\d+\.\d+/);

    const seen: string[] = [];
    const watcher = await client.watch().prefix(etcd.key('services/')).create();
    watcher.on('put', (kv) => seen.push(`put ${kv.key.toString()}`));
    watcher.on('delete', (kv) => seen.push(`delete ${kv.key.toString()}`));
    try {
      const key = etcd.key('services/users/instance-1');
      const lease = client.lease(2, { autoKeepAlive: false });
      await lease.put(key).value('http://127.0.0.1:1');
      await client.put(etcd.key('elsewhere')).value('not watched');
      const putAt = Date.now();

      expect(await client.get(key).string(), 'the key put under the lease should read back').toBe('http://127.0.0.1:1');
      expect((await etcd.leaseOf(key))?.lease, 'the key should be attached to the lease').not.toBe('0');
      await vi.waitFor(() => expect(seen, 'the prefix watch should see the put').toContain(`put ${key}`), { timeout: 5_000 });

      await vi.waitFor(
        () => expect(seen, 'the key should be deleted when its 2 s lease expires (no keep-alive)').toContain(`delete ${key}`),
        { timeout: 15_000, interval: 100 },
      );
      expect(Date.now() - putAt, 'a 2 s lease should not expire before 1.5 s').toBeGreaterThan(1_500);
      expect(await client.get(key).string(), 'the expired key should be gone').toBeNull();
      expect(seen.filter((event) => event.includes('elsewhere')), 'the watch should see nothing outside its prefix').toEqual([]);
    } finally {
      await watcher.cancel();
    }
  });
});
