import { isPortOpen } from '../net.ts';
import { SERVICES, type ServiceEndpoint, type ServiceEndpoints, type ServiceName } from '../services.ts';

/** Provider 3 (work in progress): native services on their usual ports. */
export async function findRunningNative(service: ServiceName): Promise<ServiceEndpoint | undefined> {
  const spec = SERVICES[service];
  if (!(await isPortOpen(spec.host, spec.port))) return undefined;
  return { service, url: spec.url, provider: 'native', detail: `listening on ${spec.host}:${spec.port}` };
}

export async function canProvisionNatively(): Promise<boolean> {
  return false;
}

export async function provisionNative(
  services: readonly ServiceName[],
  _progress: (message: string) => void,
): Promise<ServiceEndpoints> {
  throw new Error(`native provisioning of ${services.join(', ')} is not written yet`);
}

export function nativeInstructions(services: readonly ServiceName[]): string {
  return `Start ${services.map((s) => SERVICES[s].label).join(', ')} locally, or set their URLs in the environment.`;
}
