import { hostname } from 'node:os';
import type { StartedTestContainer } from 'testcontainers';
import { freePort } from '../net.ts';
import { PROBES, waitUntilReady } from '../probes.ts';
import { SERVICES, type ServiceName } from '../services.ts';
import { etcdContainer } from './containers.ts';
import { KAFKA_CONTAINER_ENVIRONMENT } from './kafka.ts';
import { GRACEFUL_STOP_MS } from './stop.ts';

/**
 * A private container of any service for one check. Its port is bound to a fixed host port so
 * that a stop and start keeps the same URL (Docker picks a new random port when a container
 * starts again). Not reused: Ryuk removes it when the check process ends, even after a crash, and
 * its labels let `npm run infra -- down` find it when Ryuk is disabled.
 */

/** Every private container carries this label (the service) and the owner's host and pid. */
export const DEDICATED_LABEL = 'org.event-driven-course.dedicated';
export const OWNER_LABEL = 'org.event-driven-course.owner';


export interface DockerDedicated {
  url: string;
  detail: string;
  stop(options?: { kill?: boolean }): Promise<void>;
  start(): Promise<void>;
  release(): Promise<void>;
  discard(): Promise<void>;
}

async function dockerHost(): Promise<string> {
  const { getContainerRuntimeClient } = await import('testcontainers');
  return (await getContainerRuntimeClient()).info.containerRuntime.host;
}

async function startContainer(service: ServiceName, hostPort: number, labels: Record<string, string>): Promise<StartedTestContainer> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const { image, containerPort } = SERVICES[service];
  const ports = { container: containerPort, host: hostPort };
  switch (service) {
    case 'redis':
      return new GenericContainer(image).withExposedPorts(ports).withLabels(labels)
        .withWaitStrategy(Wait.forLogMessage('Ready to accept connections')).start();
    case 'rabbitmq': {
      const { RabbitMQContainer } = await import('@testcontainers/rabbitmq');
      return new RabbitMQContainer(image).withExposedPorts(ports).withLabels(labels).withStartupTimeout(120_000).start();
    }
    case 'postgres': {
      const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
      return new PostgreSqlContainer(image).withUsername('postgres').withPassword('postgres').withDatabase('postgres')
        .withExposedPorts(ports).withLabels(labels).start();
    }
    case 'kafka': {
      const host = await dockerHost();
      return new GenericContainer(image)
        .withExposedPorts(ports)
        .withEnvironment({
          ...KAFKA_CONTAINER_ENVIRONMENT,
          // The host port is fixed, so the advertised address is known before the start.
          KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://${host}:${hostPort},BROKER://localhost:9093`,
        })
        .withLabels(labels)
        .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
        .withStartupTimeout(120_000)
        .start();
    }
    case 'etcd':
      return (await etcdContainer(ports)).withLabels(labels).start();
  }
}

export async function startDockerDedicated(service: ServiceName): Promise<DockerDedicated> {
  const { getContainerRuntimeClient } = await import('testcontainers');
  const client = await getContainerRuntimeClient();
  await removeAbandonedContainers();
  const labels = { [DEDICATED_LABEL]: service, [OWNER_LABEL]: `${hostname()}:${process.pid}` };
  for (let attempt = 1; ; attempt += 1) {
    const hostPort = await freePort();
    let container: StartedTestContainer;
    try {
      container = await startContainer(service, hostPort, labels);
    } catch (error) {
      // The port picked here may be taken on the Docker host (a remote engine): pick another.
      if (attempt >= 3 || !/port is already allocated|address already in use/i.test(String(error))) throw error;
      continue;
    }
    const id = container.getId().slice(0, 12);
    const url = SERVICES[service].urlFor(container.getHost(), hostPort);
    const ready = () => waitUntilReady(() => PROBES[service](url), {
      what: `the private ${SERVICES[service].label} container ${id}`,
      timeoutMs: 120_000,
      logFile: `docker logs ${id}`,
    });
    await ready();
    const raw = client.container.getById(container.getId());
    return {
      url,
      detail: `private container ${id}, ${SERVICES[service].image}`,
      async stop(options = {}) {
        if (options.kill) await raw.kill().catch(ignoreNotRunning);
        else await client.container.stop(raw, { timeout: GRACEFUL_STOP_MS }).catch(ignoreNotRunning);
      },
      async start() {
        const state = await client.container.inspect(raw);
        if (!state.State.Running) await client.container.start(raw);
        await ready();
      },
      release: () => removeContainer(raw),
      discard: () => removeContainer(raw),
    };
  }
}

async function removeContainer(container: { remove(options: { force: boolean; v: boolean }): Promise<unknown> }): Promise<void> {
  await container.remove({ force: true, v: true }).catch(() => undefined);
}

function ignoreNotRunning(error: unknown): void {
  if (!/not running|is not running|304/i.test(String(error))) throw error;
}

/**
 * Removes private containers whose owning check process on this host is gone, or all of them
 * with `everything` (`npm run infra -- down`). Returns how many were removed.
 */
export async function removeAbandonedContainers(everything = false): Promise<number> {
  const { getContainerRuntimeClient } = await import('testcontainers');
  const client = await getContainerRuntimeClient();
  const all = await client.container.dockerode.listContainers({ all: true, filters: { label: [DEDICATED_LABEL] } });
  let removed = 0;
  for (const info of all) {
    const [host, pid] = (info.Labels?.[OWNER_LABEL] ?? '').split(':');
    const abandoned = host === hostname() && !processAlive(Number(pid));
    if (!everything && !abandoned) continue;
    await removeContainer(client.container.getById(info.Id));
    removed += 1;
  }
  return removed;
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
