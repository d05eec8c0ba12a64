import { test as base } from 'vitest';
import { DedicatedUnavailableError, startDedicated, type DedicatedInstance } from '../../infra/dedicated.ts';
import type { ServiceName } from '../../infra/services.ts';
import { EtcdTestKit } from './etcd.ts';
import { KafkaTestKit } from './kafka.ts';
import { uniqueName } from './names.ts';
import { within } from './polling.ts';
import { PgTestKit } from './postgres.ts';
import { ProcessGroup } from './processes.ts';
import { RabbitScope } from './rabbitmq.ts';
import { RedisTestKit } from './redis.ts';
import { serviceUrl } from './services.ts';

/**
 * The fixtures every check is written with. Each is created when a test first names it and torn
 * down after that test, pass or fail, so tests stay independent under `describe.concurrent`, and a
 * test may combine several (a PostgreSQL transaction and a RabbitMQ publish in one requirement):
 *
 *   test('an order and its outbox row commit together', async ({ pg, rabbit, procs }) => { … });
 *
 * - `pg`: a schema of the test's own (search_path set), with helpers to count rows, read tables,
 *   apply the lesson's migrations and race transactions on separate connections.
 * - `redis`: connections, and every key under the test's unique prefix deleted afterwards.
 * - `rabbit`: connections and channels that never crash the test, queues and exchanges deleted.
 * - `kafka`: admin clients, unique topics and groups deleted, handler errors of this test only.
 * - `etcd`: clients, and every key under the test's unique prefix deleted afterwards.
 * - `procs`: lesson processes (and HTTP services on free ports), stopped newest first.
 * - `own`: a private instance of a service that the test may stop, kill and restart (an outage).
 *
 * Teardown runs in reverse order of this list: processes stop first, then private instances go
 * back, then the brokers' and the database's resources are removed.
 */
export interface CheckFixtures {
  pg: PgTestKit;
  redis: RedisTestKit;
  rabbit: RabbitScope;
  kafka: KafkaTestKit;
  etcd: EtcdTestKit;
  own: PrivateServices;
  procs: ProcessGroup;
  /** A name no other test, run or learner shares (queues, topics, groups, streams, schemas). */
  unique: (prefix: string) => string;
}

export interface PrivateServices {
  /**
   * Starts (or claims a warm) private instance of the service for this test. Where none can be
   * started here (no Docker engine, no way to run it natively), the requirement is reported as not
   * graded here, with the reason, instead of failing.
   */
  start(service: ServiceName): Promise<DedicatedInstance>;
}

/** vitest puts no limit on a fixture's teardown: each one bounds its own, so a stuck cleanup fails its test instead of hanging the run. */
const CLEANUP_MS = 30_000;
const RELEASE_MS = 90_000;

/** Runs a fixture's teardown with a limit; `stuckAt` says which step it was in when time ran out. */
async function tearDown(ms: number, what: string, cleanup: () => Promise<unknown>, stuckAt?: () => string): Promise<void> {
  await within(ms, cleanup(), () => `after the test, ${what} did not finish within ${ms / 1000} s` +
    (stuckAt ? ` (stuck at: ${stuckAt()})` : ''));
}

export const test = base.extend<CheckFixtures>({
  unique: async ({}, use) => {
    await use(uniqueName);
  },
  pg: async ({}, use) => {
    const kit = new PgTestKit(serviceUrl('postgres'));
    await use(kit);
    await tearDown(CLEANUP_MS, 'dropping the test\'s PostgreSQL schema', () => kit.teardown());
  },
  redis: async ({}, use) => {
    const kit = new RedisTestKit();
    await use(kit);
    await tearDown(CLEANUP_MS, 'deleting the test\'s Redis keys', () => kit.teardown());
  },
  rabbit: async ({}, use) => {
    const scope = new RabbitScope(() => serviceUrl('rabbitmq'));
    await use(scope);
    await tearDown(CLEANUP_MS, 'deleting the test\'s RabbitMQ queues and exchanges', () => scope.cleanup(), () => scope.cleanupStep);
  },
  kafka: async ({}, use) => {
    const kit = new KafkaTestKit();
    await use(kit);
    await tearDown(CLEANUP_MS, 'deleting the test\'s Kafka topics and groups', () => kit.teardown());
  },
  etcd: async ({}, use) => {
    const kit = new EtcdTestKit();
    await use(kit);
    await tearDown(CLEANUP_MS, 'deleting the test\'s etcd keys', () => kit.teardown());
  },
  own: async ({ skip }, use) => {
    const started: DedicatedInstance[] = [];
    await use({
      async start(service) {
        try {
          const instance = await startDedicated(service, { onProgress: (line) => console.log(`[private ${service}] ${line}`) });
          started.push(instance);
          return instance;
        } catch (error) {
          if (error instanceof DedicatedUnavailableError) skip(`not graded here: ${error.message}`);
          throw error;
        }
      },
    });
    await tearDown(RELEASE_MS, 'giving back the private service instances', () =>
      Promise.allSettled(started.reverse().map((instance) => instance.release())));
  },
  procs: async ({ onTestFailed }, use) => {
    const group = new ProcessGroup();
    onTestFailed(({ task }) => {
      const error = task.result?.errors?.[0];
      if (!error || group.all.length === 0 || error.message.includes('Its output was')) return;
      error.message += `\nWhat the lesson processes printed:\n${group.combinedLog()}`;
    });
    await use(group);
    await tearDown(CLEANUP_MS, 'stopping the lesson processes', () => group.teardown());
  },
});

/** The same as `test`, for checks that read better with `it`. */
export const it = test;

export { describe, expect, vi } from 'vitest';
