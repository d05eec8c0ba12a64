import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { SERVICE_LABEL, startCourseContainer } from '../docker/containers.ts';
import { GRACEFUL_STOP_MS } from '../docker/stop.ts';
import { withStartLock } from '../native/lock.ts';
import { isPortOpen } from '../net.ts';
import { PROBES, waitUntilReady } from '../probes.ts';
import { SERVICES, isServiceName, type ServiceEndpoint, type ServiceName } from '../services.ts';

/** Provider 2: a Docker engine, through Testcontainers, with containers reused across runs. */

let engineCheck: Promise<EngineStatus> | undefined;

export interface EngineStatus {
  available: boolean;
  /** Why not, or where the engine was found. */
  reason: string;
}

/**
 * Whether a Docker engine answers. Without one this returns in a few milliseconds: it looks for
 * the engine's socket (or DOCKER_HOST) before loading Testcontainers, and remembers the answer.
 * COURSE_DOCKER=off skips Docker even when an engine runs.
 */
export async function dockerEngineAvailable(): Promise<boolean> {
  return (await dockerEngineStatus()).available;
}

export function dockerEngineStatus(): Promise<EngineStatus> {
  engineCheck ??= detectEngine();
  return engineCheck;
}

async function detectEngine(): Promise<EngineStatus> {
  if (/^(off|0|false|no)$/i.test(process.env.COURSE_DOCKER ?? '')) {
    return { available: false, reason: 'COURSE_DOCKER=off' };
  }
  const endpoint = await findEngineEndpoint();
  if (!endpoint.found) return { available: false, reason: endpoint.where };
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    const client = await withTimeout(getContainerRuntimeClient(), 20_000, 'the Docker engine did not answer within 20 s');
    return { available: true, reason: `${client.info.containerRuntime.host} (${endpoint.where})` };
  } catch (error) {
    return { available: false, reason: `${endpoint.where} does not work: ${errorMessage(error)}` };
  }
}

/** Where an engine may listen: DOCKER_HOST, a Testcontainers config, or a well-known socket. */
async function findEngineEndpoint(): Promise<{ found: boolean; where: string }> {
  const dockerHost = process.env.DOCKER_HOST?.trim();
  if (dockerHost) {
    const url = safeUrl(dockerHost);
    const where = `DOCKER_HOST=${dockerHost}`;
    if (url?.protocol === 'unix:') {
      const found = await socketAnswers(url.pathname);
      return { found, where: found ? where : `nothing answers at ${where}` };
    }
    if (url && (url.protocol === 'tcp:' || url.protocol === 'http:' || url.protocol === 'https:')) {
      const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 2376 : 2375;
      const found = await isPortOpen(url.hostname, port, 700);
      return { found, where: found ? where : `nothing answers at ${where}` };
    }
    return { found: true, where };
  }
  if (existsSync(join(homedir(), '.testcontainers.properties'))) {
    return { found: true, where: '~/.testcontainers.properties' };
  }
  if (process.platform === 'win32') return { found: true, where: 'the Docker Desktop pipe' };
  for (const socket of candidateSockets()) {
    if (existsSync(socket) && (await socketAnswers(socket))) return { found: true, where: socket };
  }
  return { found: false, where: 'no Docker socket (/var/run/docker.sock) and DOCKER_HOST unset' };
}

function candidateSockets(): string[] {
  const sockets = ['/var/run/docker.sock'];
  if (process.env.XDG_RUNTIME_DIR) sockets.push(join(process.env.XDG_RUNTIME_DIR, 'docker.sock'));
  sockets.push(
    join(homedir(), '.docker', 'run', 'docker.sock'),
    join(homedir(), '.docker', 'desktop', 'docker.sock'),
    join('/run', 'user', String(userInfo().uid), 'docker.sock'),
  );
  return sockets;
}

function socketAnswers(path: string, timeoutMs = 700): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    const finish = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

/** Starts (or finds again) the course's container for a service and waits until it answers. */
export async function startContainer(service: ServiceName): Promise<ServiceEndpoint> {
  // One process at a time per service, so two runs started together do not each create a container.
  const { url, container } = await withStartLock(() => {}, () => startCourseContainer(service), `container-${service}`);
  await waitUntilReady(() => PROBES[service](url), {
    what: `${SERVICES[service].label} in container ${container.getId().slice(0, 12)}`,
    timeoutMs: 120_000,
    logFile: `docker logs ${container.getId().slice(0, 12)}`,
  });
  return {
    service,
    url,
    provider: 'docker',
    detail: `container ${container.getId().slice(0, 12)}, ${SERVICES[service].image}, kept for the next run`,
  };
}

export interface CourseContainerInfo {
  service: ServiceName;
  id: string;
  image: string;
  running: boolean;
  /** Where the service answers on the host, while the container runs. */
  url: string | undefined;
}

/** The containers the course started (by label), running or not. Never others. */
export async function listCourseContainers(): Promise<CourseContainerInfo[]> {
  const { getContainerRuntimeClient } = await import('testcontainers');
  const client = await getContainerRuntimeClient();
  const found: CourseContainerInfo[] = [];
  const all = await client.container.dockerode.listContainers({ all: true, filters: { label: [SERVICE_LABEL] } });
  for (const info of all) {
    const service = info.Labels?.[SERVICE_LABEL];
    if (service && isServiceName(service)) {
      const published = info.Ports.find((port) => port.PrivatePort === SERVICES[service].containerPort && port.PublicPort);
      const url = published ? SERVICES[service].urlFor(client.info.containerRuntime.host, published.PublicPort) : undefined;
      found.push({ service, id: info.Id, image: info.Image, running: info.State === 'running', url });
    }
  }
  return found;
}

/** Stops and removes the course's containers (of the given services); returns what was removed. */
export async function removeCourseContainers(services: readonly ServiceName[]): Promise<CourseContainerInfo[]> {
  const { getContainerRuntimeClient } = await import('testcontainers');
  const client = await getContainerRuntimeClient();
  const removed: CourseContainerInfo[] = [];
  for (const info of await listCourseContainers()) {
    if (!services.includes(info.service)) continue;
    const container = client.container.getById(info.id);
    // Testcontainers takes milliseconds: give each service its graceful shutdown before the kill.
    if (info.running) await client.container.stop(container, { timeout: GRACEFUL_STOP_MS });
    await client.container.remove(container, { removeVolumes: true });
    removed.push(info);
  }
  return removed;
}

/** Restarts the course's container for a service and returns its address afterwards. */
export async function restartCourseContainer(service: ServiceName): Promise<ServiceEndpoint | undefined> {
  const { getContainerRuntimeClient } = await import('testcontainers');
  const client = await getContainerRuntimeClient();
  const info = (await listCourseContainers()).find((c) => c.service === service);
  if (!info) return undefined;
  await client.container.restart(client.container.getById(info.id), { timeout: GRACEFUL_STOP_MS });
  // The host port may change with a restart; finding the container again reads the new one.
  return startContainer(service);
}

function safeUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(message)), ms);
    timer.unref();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
