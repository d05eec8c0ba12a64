import { dockerEngineStatus, listCourseContainers, type CourseContainerInfo } from './providers/docker.ts';
import { courseInstance } from './providers/native.ts';
import { firstHostPort, isPortOpen } from './net.ts';
import { SERVICES, type ProviderName, type ServiceName } from './services.ts';

/** What serves a service right now, found without starting anything (`npm run infra -- status`). */
export interface ServiceStatus {
  service: ServiceName;
  /** undefined: nothing serves it yet. */
  provider: ProviderName | undefined;
  url: string | undefined;
  reachable: boolean;
  detail: string;
  /** How to get it, when it is not running. */
  hint?: string;
}

export async function serviceStatuses(services: readonly ServiceName[]): Promise<ServiceStatus[]> {
  const docker = await dockerEngineStatus();
  let containers: CourseContainerInfo[] = [];
  let dockerTrouble: string | undefined;
  if (docker.available) {
    try {
      containers = await listCourseContainers();
    } catch (error) {
      dockerTrouble = error instanceof Error ? error.message : String(error);
    }
  }
  return Promise.all(services.map((service) => statusOf(service, docker.available, containers, dockerTrouble)));
}

async function statusOf(
  service: ServiceName,
  dockerAvailable: boolean,
  containers: CourseContainerInfo[],
  dockerTrouble: string | undefined,
): Promise<ServiceStatus> {
  const spec = SERVICES[service];
  const fromEnv = process.env[spec.envVar]?.trim();
  if (fromEnv) {
    const { host, port } = firstHostPort(fromEnv, spec.port);
    const reachable = await isPortOpen(host, port, 2_000);
    return {
      service,
      provider: 'env',
      url: fromEnv,
      reachable,
      detail: reachable ? `from ${spec.envVar}` : `from ${spec.envVar}, but nothing answers at ${host}:${port}`,
      hint: reachable ? undefined : `start that broker, or unset ${spec.envVar}`,
    };
  }

  if (dockerAvailable) {
    const container = containers.find((c) => c.service === service && c.running && c.url);
    if (container?.url) {
      return { service, provider: 'docker', url: container.url, reachable: true, detail: `container ${container.id.slice(0, 12)}, ${container.image}` };
    }
    const stopped = containers.filter((c) => c.service === service && !c.running);
    const detail = dockerTrouble
      ? `Docker engine found but not usable: ${dockerTrouble}`
      : stopped.length > 0
        ? `course container ${stopped.map((c) => c.id.slice(0, 12)).join(', ')} stopped`
        : 'no course container yet';
    return {
      service,
      provider: undefined,
      url: undefined,
      reachable: false,
      detail,
      hint: `npm run infra -- up ${service} (${stopped.length > 0 ? 'starts a running one' : 'starts it'} with Testcontainers)`,
    };
  }

  const instance = courseInstance(service);
  if (await isPortOpen(spec.host, spec.port)) {
    return {
      service,
      provider: 'native',
      url: spec.url,
      reachable: true,
      detail:
        instance.pid === undefined
          ? `listening on ${spec.host}:${spec.port}, not started by the course`
          : `started by the course, pid ${instance.pid}, log ${instance.logFile}`,
    };
  }
  return {
    service,
    provider: undefined,
    url: undefined,
    reachable: false,
    detail: 'not running',
    hint: `npm run infra -- up ${service}`,
  };
}
