import { Redis } from 'ioredis';
import { outputTail, type LessonProcess } from './processes.ts';
import { serviceUrl } from './services.ts';

/**
 * The Redis connections a check opens and the keys it creates. Call `teardown()` in afterEach
 * (after stopping the processes that use those keys): every key is deleted and every connection
 * closed, whether the test passed or not.
 */
export class RedisTestKit {
  private readonly clients = new Set<Redis>();
  private readonly keys = new Set<string>();

  /** A new connection to the Redis the lesson declared, closed at teardown. */
  connect(): Redis {
    const client = new Redis(serviceUrl('redis'), { maxRetriesPerRequest: 3 });
    this.clients.add(client);
    return client;
  }

  /** Keys (streams, hashes, lists) to delete at teardown. */
  deleteAfterTest(...keys: string[]): void {
    for (const key of keys) this.keys.add(key);
  }

  async teardown(): Promise<void> {
    const clients = [...this.clients];
    const keys = [...this.keys];
    this.clients.clear();
    this.keys.clear();
    if (keys.length > 0) {
      const admin = new Redis(serviceUrl('redis'), { maxRetriesPerRequest: 3 });
      try {
        await admin.del(...keys);
      } finally {
        await close(admin);
      }
    }
    await Promise.all(clients.map(close));
  }
}

async function close(client: Redis): Promise<void> {
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}

export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
}

/** Every entry of a stream, oldest first (XRANGE - +). */
export async function readStream(redis: Redis, key: string): Promise<StreamEntry[]> {
  const entries = await redis.xrange(key, '-', '+');
  return entries.map(([id, flat]) => ({ id, fields: pairs(flat) }));
}

export interface PendingEntry {
  id: string;
  consumer: string;
  idleMs: number;
  deliveries: number;
}

/** The group's pending entries list: delivered to a consumer, not acknowledged yet (XPENDING). */
export async function pendingEntries(redis: Redis, stream: string, group: string): Promise<PendingEntry[]> {
  const reply = (await redis.xpending(stream, group, '-', '+', 1000)) as Array<[string, string, number, number]>;
  return reply.map(([id, consumer, idleMs, deliveries]) => ({ id, consumer, idleMs, deliveries }));
}

function pairs(flat: string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
  return fields;
}

/**
 * Polls until `condition` holds for what the services printed, failing at once when one of them
 * reports a TODO or all of them have exited, and at the deadline with `failure()` and their output.
 */
export async function waitForOutputs(
  services: LessonProcess[],
  condition: () => boolean,
  failure: () => string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (condition()) return;
    for (const service of services) {
      const todo = /\bTODO: ([\w.]+)/.exec(service.output());
      if (todo) throw new Error(`TODO: ${todo[1]}`);
    }
    const allExited = services.every((service) => !service.running);
    if (allExited || Date.now() > deadline) {
      const outputs = services.map((service) => `${service.name}${service.running ? '' : ' (exited)'}:\n` +
        `${outputTail(service.output()) || '  (nothing)'}`);
      throw new Error(`${failure()}\n${outputs.join('\n')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
