import { ensureServices } from '../../infra/resolve.ts';
import { describeEndpoint, endpointEnv, type ServiceEndpoints, type ServiceName } from '../../infra/services.ts';
import { dim, PASS } from './ui.ts';

/**
 * Makes the services reachable with visible progress, and exports their addresses to this process's
 * environment so that the checks (and the processes they start) find them without looking again.
 */
export async function bringUpServices(services: readonly ServiceName[], quiet = false): Promise<ServiceEndpoints> {
  if (services.length === 0) return {};
  const log = quiet ? () => {} : (line: string) => console.log(line);
  const started = Date.now();
  const endpoints = await ensureServices(services, { provision: true, onProgress: (message) => log(dim(`  … ${message}`)) });
  Object.assign(process.env, endpointEnv(endpoints));
  for (const service of services) {
    const endpoint = endpoints[service];
    if (endpoint) log(`  ${PASS} ${describeEndpoint(endpoint)}`);
  }
  const seconds = (Date.now() - started) / 1000;
  if (seconds > 2) log(dim(`  services ready in ${seconds.toFixed(1)} s`));
  return endpoints;
}
