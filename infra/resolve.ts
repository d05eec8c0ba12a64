import { fromEnvironment } from './providers/env.ts';
import { dockerEngineAvailable, dockerEngineStatus, startContainer } from './providers/docker.ts';
import { canProvisionNatively, findRunningNative, nativeInstructions, provisionNative } from './providers/native.ts';
import { SERVICES, ServiceUnavailableError, type ServiceEndpoints, type ServiceName } from './services.ts';

export interface EnsureOptions {
  /** Progress lines while services start ("starting Kafka…"). */
  onProgress?: (message: string) => void;
  /** Allow installing and starting native services when nothing else serves them (default: true). */
  provision?: boolean;
}

/**
 * Makes every named service reachable and returns where. For each service, in order:
 * 1. an address from the environment (REDIS_URL, AMQP_URL, KAFKA_BROKERS, DATABASE_URL);
 * 2. a Docker engine, through Testcontainers (containers are reused by the next run);
 * 3. a native service already listening on its usual port, or one the course installs and starts.
 */
export async function ensureServices(
  services: readonly ServiceName[],
  options: EnsureOptions = {},
): Promise<ServiceEndpoints> {
  const progress = options.onProgress ?? (() => {});
  const endpoints: ServiceEndpoints = {};
  let unserved: ServiceName[] = [];

  for (const service of services) {
    const endpoint = await fromEnvironment(service);
    if (endpoint) endpoints[service] = endpoint;
    else unserved.push(service);
  }
  if (unserved.length === 0) return endpoints;

  if (await dockerEngineAvailable()) {
    const notStarted: ServiceName[] = [];
    // In parallel: a cold start then takes as long as the slowest service (Kafka), not the sum.
    await Promise.all(unserved.map(async (service) => {
      const label = SERVICES[service].label;
      progress(`${label}: reusing the course's container, or starting one with Testcontainers…`);
      try {
        endpoints[service] = await startContainer(service);
        progress(`${label}: ${endpoints[service].detail}`);
      } catch (error) {
        const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
        progress(`Docker could not start ${label} (${reason}). FALLING BACK to a ${label} on this machine instead of Docker.`);
        notStarted.push(service);
      }
    }));
    unserved = notStarted;
    if (unserved.length === 0) return endpoints;
  }

  const missing: ServiceName[] = [];
  for (const service of unserved) {
    const endpoint = await findRunningNative(service, progress);
    if (endpoint) endpoints[service] = endpoint;
    else missing.push(service);
  }
  if (missing.length === 0) return endpoints;

  if (options.provision !== false && (await canProvisionNatively(missing))) {
    Object.assign(endpoints, await provisionNative(missing, progress));
    return endpoints;
  }

  const first = missing[0]!;
  const spec = SERVICES[first];
  const docker = await dockerEngineStatus();
  throw new ServiceUnavailableError(
    first,
    `${spec.envVar} (unset), a Docker engine (${docker.available ? 'could not start it' : docker.reason}), ` +
      `${spec.host}:${spec.port} (nothing listening)`,
    nativeInstructions(missing),
  );
}
