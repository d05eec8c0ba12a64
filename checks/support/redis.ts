import { Redis } from 'ioredis';
import { outputTail, type LessonProcess } from './processes.ts';
import { locationInGradedCode, todoMessage } from '../../tooling/course/todo.ts';
import { uniqueName } from './names.ts';
import { serviceUrl } from './services.ts';

/**
 * The Redis connections a test opens and the keys it creates. Every key under the test's prefix
 * (`prefix`, unique to the test) and every key or pattern named with deleteAfterTest() is deleted
 * and every connection closed after the test (after the processes that use them have stopped),
 * whether it passed or not. Give learner code names built with key() or prefix (bull: the queue's
 * `prefix` option), and nothing the test made survives it.
 */
export class RedisTestKit {
  readonly prefix: string;
  private readonly clients = new Set<Redis>();
  private readonly keys = new Set<string>();
  private readonly patterns = new Set<string>();

  constructor(private readonly url: () => string = () => serviceUrl('redis'), prefix = uniqueName('check')) {
    this.prefix = prefix;
  }

  /** A key (or channel, stream, queue name) under the test's prefix: "<prefix>:<name>". */
  key(name: string): string {
    return `${this.prefix}:${name}`;
  }

  /** A new connection to the Redis the lesson declared, closed after the test. */
  connect(): Redis {
    const client = new Redis(this.url(), { maxRetriesPerRequest: 3 });
    client.on('error', () => {});
    this.clients.add(client);
    return client;
  }

  /** Keys (streams, hashes, lists) outside the prefix to delete after the test; `*` patterns allowed. */
  deleteAfterTest(...keys: string[]): void {
    for (const key of keys) (key.includes('*') ? this.patterns : this.keys).add(key);
  }

  async teardown(): Promise<void> {
    const clients = [...this.clients];
    this.clients.clear();
    // `<prefix>:*`, never `<prefix>*`: check-x-1* would also match check-x-10…, another test's keys.
    const patterns = [`${this.prefix}:*`, ...this.patterns];
    const keys = [this.prefix, ...this.keys];
    this.keys.clear();
    this.patterns.clear();
    const admin = new Redis(this.url(), { maxRetriesPerRequest: 1, retryStrategy: () => null });
    admin.on('error', () => {});
    try {
      for (const pattern of patterns) keys.push(...(await scanKeys(admin, pattern)));
      if (keys.length > 0) await admin.del(...keys);
    } catch {
      // Redis is gone (a private instance already stopped): nothing left to delete.
    } finally {
      await close(admin);
    }
    await Promise.all(clients.map(close));
  }
}

/** Every key matching a pattern, found with SCAN (never KEYS, which blocks a shared server). */
export async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    found.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return found;
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
      if (todo) throw new Error(todoMessage(todo[1]!, locationInGradedCode(service.output().slice(todo.index))));
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
