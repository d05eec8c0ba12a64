import { firstHostPort, isPortOpen } from '../net.ts';
import { SERVICES, ServiceUnavailableError, type ServiceEndpoint, type ServiceName } from '../services.ts';

/** Provider 1: an address given in the environment (shared workshop brokers, CI). */
export async function fromEnvironment(service: ServiceName): Promise<ServiceEndpoint | undefined> {
  const spec = SERVICES[service];
  const url = process.env[spec.envVar]?.trim();
  if (!url) return undefined;

  const { host, port } = firstHostPort(url, spec.port);
  if (!(await isPortOpen(host, port, 2000))) {
    throw new ServiceUnavailableError(
      service,
      `${spec.envVar}=${url}`,
      `Nothing answers at ${host}:${port}. Check that the broker is running and reachable, ` +
        `or unset ${spec.envVar} to let the course use Docker or local services.`,
    );
  }
  return { service, url, provider: 'env', detail: `from ${spec.envVar}` };
}
