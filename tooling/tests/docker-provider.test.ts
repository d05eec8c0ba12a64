import { describe, expect, it, vi } from 'vitest';

/**
 * The Docker provider against a fake engine client: what it asks Docker to do. (The real engine
 * path runs in CI with the stand-in engine; these pin the decisions that went wrong before.)
 */
interface FakeContainerInfo {
  Id: string;
  Image: string;
  State: string;
  Labels: Record<string, string>;
  Ports: Array<{ PrivatePort: number; PublicPort?: number }>;
}

const engine = vi.hoisted(() => ({
  containers: [] as FakeContainerInfo[],
  stops: [] as Array<{ id: string; timeout: number | undefined }>,
  removed: [] as string[],
}));

vi.mock('testcontainers', () => ({
  getContainerRuntimeClient: async () => ({
    info: { containerRuntime: { host: 'localhost' } },
    container: {
      dockerode: {
        listContainers: async ({ filters }: { filters: { label: string[] } }) =>
          engine.containers.filter((c) => filters.label.every((label) => label in c.Labels)),
      },
      getById: (id: string) => ({ id, remove: async () => void engine.removed.push(id), kill: async () => {} }),
      stop: async (container: { id: string }, options?: { timeout?: number }) => void engine.stops.push({ id: container.id, timeout: options?.timeout }),
      remove: async (container: { id: string }) => void engine.removed.push(container.id),
    },
  }),
}));

const { listCourseContainers, removeCourseContainers } = await import('../../infra/providers/docker.ts');
const { removeAbandonedContainers, DEDICATED_LABEL, OWNER_LABEL } = await import('../../infra/docker/dedicated.ts');
const { SERVICE_LABEL } = await import('../../infra/docker/containers.ts');
const { hostname } = await import('node:os');

function reset(containers: FakeContainerInfo[]): void {
  engine.containers = containers;
  engine.stops = [];
  engine.removed = [];
}

describe('the Docker provider', () => {
  it('stops containers gracefully: Testcontainers takes milliseconds, and RabbitMQ and Kafka need seconds', async () => {
    reset([
      { Id: 'rabbit1', Image: 'rabbitmq', State: 'running', Labels: { [SERVICE_LABEL]: 'rabbitmq' }, Ports: [{ PrivatePort: 5672, PublicPort: 32001 }] },
      { Id: 'kafka1', Image: 'kafka', State: 'exited', Labels: { [SERVICE_LABEL]: 'kafka' }, Ports: [] },
    ]);
    const removed = await removeCourseContainers(['rabbitmq', 'kafka']);
    expect(removed.map((c) => c.id).sort()).toEqual(['kafka1', 'rabbit1']);
    expect(engine.stops, 'only the running container is stopped, with a graceful timeout').toEqual([{ id: 'rabbit1', timeout: expect.any(Number) }]);
    expect(engine.stops[0]!.timeout, 'a timeout of a few milliseconds would make Docker kill RabbitMQ at once (exit 137)').toBeGreaterThanOrEqual(5_000);
  });

  it('lists the course containers that are stopped as well as the running ones, with the running one\'s URL', async () => {
    reset([
      { Id: 'pg1', Image: 'postgres', State: 'running', Labels: { [SERVICE_LABEL]: 'postgres' }, Ports: [{ PrivatePort: 5432, PublicPort: 32002 }] },
      { Id: 'redis1', Image: 'redis', State: 'exited', Labels: { [SERVICE_LABEL]: 'redis' }, Ports: [] },
    ]);
    const listed = await listCourseContainers();
    expect(listed).toEqual([
      { service: 'postgres', id: 'pg1', image: 'postgres', running: true, url: 'postgres://postgres:postgres@localhost:32002/postgres' },
      { service: 'redis', id: 'redis1', image: 'redis', running: false, url: undefined },
    ]);
  });

  it('removes private containers whose check process on this host is gone, and all of them on infra down', async () => {
    const labels = (owner: string) => ({ [DEDICATED_LABEL]: 'rabbitmq', [OWNER_LABEL]: owner });
    reset([
      { Id: 'mine', Image: 'rabbitmq', State: 'running', Labels: labels(`${hostname()}:${process.pid}`), Ports: [] },
      { Id: 'orphan', Image: 'rabbitmq', State: 'running', Labels: labels(`${hostname()}:999999999`), Ports: [] },
      { Id: 'elsewhere', Image: 'rabbitmq', State: 'running', Labels: labels('another-host:1'), Ports: [] },
    ]);
    expect(await removeAbandonedContainers()).toBe(1);
    expect(engine.removed).toEqual(['orphan']);
    reset(engine.containers);
    expect(await removeAbandonedContainers(true)).toBe(3);
  });
});
