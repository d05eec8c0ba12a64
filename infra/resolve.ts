import { fromEnvironment } from './providers/env.ts';
import { dockerEngineAvailable, startContainer } from './providers/docker.ts';
import { canProvisionNatively, findRunningNative, nativeInstructions, provisionNative } from './providers/native.ts';
import { SERVICES, ServiceUnavailableError, type ServiceEndpoints, type ServiceName } from './services.ts';

export interface EnsureOptions {
  /** Progress lines while services start ("starting Kafka…"). */
  onProgress?: (message: string) => void;
  /** Allow installing and starting native services when nothing else serves them. */
  provision?: boolean;
}

/**
 * Makes every named service reachable and returns where. For each service, in order:
 * 1. an address from the environment (REDIS_URL, AMQP_URL, KAFKA_BROKERS, DATABASE_URL);
 * 2. a Docker engine, through Testcontainers;
 * 3. a native service already listening on its usual port, or one the course installs and starts.
 */
export async function ensureServices(
  services: readonly ServiceName[],
  options: EnsureOptions = {},
): Promise<ServiceEndpoints> {
  const progress = options.onProgress ?? (() => {});
  const endpoints: ServiceEndpoints = {};
  const unserved: ServiceName[] = [];

  for (const service of services) {
    const endpoint = await fromEnvironment(service);
    if (endpoint) endpoints[service] = endpoint;
    else unserved.push(service);
  }
  if (unserved.length === 0) return endpoints;

  if (await dockerEngineAvailable()) {
    for (const service of unserved) {
      progress(`starting ${SERVICES[service].label} with Testcontainers…`);
      endpoints[service] = await startContainer(service);
    }
    return endpoints;
  }

  const missing: ServiceName[] = [];
  for (const service of unserved) {
    const endpoint = await findRunningNative(service);
    if (endpoint) endpoints[service] = endpoint;
    else missing.push(service);
  }
  if (missing.length === 0) return endpoints;

  if (options.provision !== false && (await canProvisionNatively())) {
    Object.assign(endpoints, await provisionNative(missing, progress));
    return endpoints;
  }

  const first = missing[0]!;
  const spec = SERVICES[first];
  throw new ServiceUnavailableError(
    first,
    `${spec.envVar} (unset), a Docker engine (none found), ${spec.host}:${spec.port} (nothing listening)`,
    nativeInstructions(missing),
  );
}
