import type { ServiceEndpoint, ServiceName } from '../services.ts';

/** Provider 2 (work in progress): Testcontainers with container reuse. */
export async function dockerEngineAvailable(): Promise<boolean> {
  return false;
}

export async function startContainer(service: ServiceName): Promise<ServiceEndpoint> {
  throw new Error(`Docker provider for ${service} is not written yet`);
}
