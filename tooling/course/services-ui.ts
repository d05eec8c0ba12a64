import { ensureServices } from '../../infra/resolve.ts';
import { describeEndpoint, endpointEnv, type ServiceEndpoints, type ServiceName } from '../../infra/services.ts';
import { dim, PASS } from './ui.ts';

export interface BringUpOptions {
  quiet?: boolean;
  /**
   * Export the addresses to this process's environment (the default), so that the checks and the
   * processes they start find the services without looking again.
   */
  exportToEnv?: boolean;
}

/** Makes the services reachable, with visible progress. */
export async function bringUpServices(services: readonly ServiceName[], options: BringUpOptions = {}): Promise<ServiceEndpoints> {
  if (services.length === 0) return {};
  const log = options.quiet ? () => {} : (line: string) => console.log(line);
  const started = Date.now();
  const endpoints = await ensureServices(services, { provision: true, onProgress: (message) => log(dim(`  … ${message}`)) });
  if (options.exportToEnv !== false) Object.assign(process.env, endpointEnv(endpoints));
  for (const service of services) {
    const endpoint = endpoints[service];
    if (endpoint) log(`  ${PASS} ${describeEndpoint(endpoint)}`);
  }
  const seconds = (Date.now() - started) / 1000;
  if (seconds > 2) log(dim(`  services ready in ${seconds.toFixed(1)} s`));
  return endpoints;
}
