import { COURSE_SERVICES } from '../native/course-services.ts';
import { withStartLock, waitForOtherStarter } from '../native/lock.ts';
import { canInstallPackages, installPackages } from '../native/packages.ts';
import { displayPath } from '../native/paths.ts';
import { isDebian } from '../native/system.ts';
import { isPortOpen } from '../net.ts';
import { PROBES } from '../probes.ts';
import { SERVICE_NAMES, SERVICES, type ServiceEndpoint, type ServiceEndpoints, type ServiceName } from '../services.ts';
import { ServiceError } from '../errors.ts';

/**
 * Provider 3: services on this machine. One already listening on the service's usual port is
 * used as it is; otherwise the course installs the Debian package and runs an instance of its own.
 */

/**
 * The service listening on its usual port, if any. While another course process is starting
 * services, waits for it first: a port can be open before the service behind it is ready.
 */
export async function findRunningNative(
  service: ServiceName,
  progress: (message: string) => void = () => {},
): Promise<ServiceEndpoint | undefined> {
  await waitForOtherStarter(progress);
  const spec = SERVICES[service];
  // The course's own instance is alive: on a machine busy enough that a connect takes more than
  // half a second, give it longer instead of concluding it is gone (and starting a second one).
  const ours = COURSE_SERVICES[service].pid() !== undefined;
  if (!(await isPortOpen(spec.host, spec.port, ours ? 5_000 : 500))) return undefined;
  return { service, url: spec.url, provider: 'native', detail: describeRunning(service) };
}

function describeRunning(service: ServiceName): string {
  const course = COURSE_SERVICES[service];
  const pid = course.pid();
  const spec = SERVICES[service];
  return pid === undefined
    ? `listening on ${spec.host}:${spec.port}, not started by the course`
    : `started by the course, pid ${pid}, log ${displayPath(course.logFile())}`;
}

/** Debian packages the given services still need. */
export function missingPackages(services: readonly ServiceName[]): string[] {
  return [...new Set(services.flatMap((service) => COURSE_SERVICES[service].missingPackages()))];
}

/**
 * Whether the course can run these services itself: on Linux, with their programs installed,
 * or on Debian/Ubuntu as root or with passwordless sudo to install them.
 */
export async function canProvisionNatively(services: readonly ServiceName[] = SERVICE_NAMES): Promise<boolean> {
  if (process.platform !== 'linux') return false;
  return missingPackages(services).length === 0 || (await canInstallPackages());
}

/**
 * Installs (one apt-get run) and starts every service not already listening, in parallel, each
 * bound to 127.0.0.1 on its usual port. With everything up it returns at once.
 */
export function provisionNative(services: readonly ServiceName[], progress: (message: string) => void): Promise<ServiceEndpoints> {
  return withStartLock(progress, async () => {
    const endpoints: ServiceEndpoints = {};
    const toStart: ServiceName[] = [];
    for (const service of services) {
      const running = await findRunningNative(service);
      if (running) endpoints[service] = running;
      else toStart.push(service);
    }
    if (toStart.length === 0) return endpoints;

    const packages = missingPackages(toStart);
    await installPackages(packages, progress);
    if (packages.length > 0) for (const service of toStart) await COURSE_SERVICES[service].afterInstall?.();
    const failures: string[] = [];
    await Promise.all(
      toStart.map(async (service) => {
        try {
          endpoints[service] = await startCourseService(service, progress);
        } catch (error) {
          failures.push(`${SERVICES[service].label} could not start: ${error instanceof Error ? error.message : String(error)}`);
        }
      }),
    );
    if (failures.length > 0) throw new ServiceError(failures.join('\n'));
    return endpoints;
  });
}

async function startCourseService(service: ServiceName, progress: (message: string) => void): Promise<ServiceEndpoint> {
  const spec = SERVICES[service];
  const course = COURSE_SERVICES[service];
  // On machines that let packages start their services, apt-get may have just started one.
  if (await isPortOpen(spec.host, spec.port)) return adoptListening(service);
  if (course.pid() !== undefined) {
    // Ours is running but did not answer in time: never start a second one over its data, and never
    // stop it because of that.
    throw new ServiceError(`${spec.label} (pid ${course.pid()}) runs but does not answer on ${spec.host}:${spec.port}; see ${displayPath(course.logFile())}`);
  }

  progress(course.startingMessage);
  const startedAt = Date.now();
  try {
    await course.start(progress);
  } catch (error) {
    // Never leave a half-started service behind; the error says where its log is.
    await course.stop().catch(() => {});
    throw error;
  }
  progress(`${spec.label} is ready on ${spec.host}:${spec.port} (${((Date.now() - startedAt) / 1000).toFixed(1)} s)`);
  return { service, url: spec.url, provider: 'native', detail: describeRunning(service) };
}

async function adoptListening(service: ServiceName): Promise<ServiceEndpoint> {
  const spec = SERVICES[service];
  try {
    await PROBES[service](spec.url);
  } catch (error) {
    throw new ServiceError(
      `${spec.host}:${spec.port} is taken by a program that does not answer as the course expects at ${spec.url} ` +
        `(${error instanceof Error ? error.message : String(error)}). ` +
        `Stop that program, or set ${spec.envVar} to a ${spec.label} the course can use.`,
    );
  }
  return { service, url: spec.url, provider: 'native', detail: describeRunning(service) };
}

/** Stops the instances the course started (never a service it did not start); returns which. */
export async function stopNative(services: readonly ServiceName[]): Promise<ServiceName[]> {
  const stopped: ServiceName[] = [];
  for (const service of services) {
    if (await COURSE_SERVICES[service].stop()) stopped.push(service);
  }
  return stopped;
}

/** Stops and starts again the course's instance of a service (its data is kept). */
export function restartNative(service: ServiceName, progress: (message: string) => void): Promise<ServiceEndpoint> {
  return withStartLock(progress, async () => {
    const course = COURSE_SERVICES[service];
    if (course.pid() === undefined) {
      throw new ServiceError(`${SERVICES[service].label} on its usual port was not started by the course, so the course will not restart it`);
    }
    progress(`stopping ${SERVICES[service].label}…`);
    await course.stop();
    return startCourseService(service, progress);
  });
}

/** The pid and log of the course's instance, for `npm run infra -- status`. */
export function courseInstance(service: ServiceName): { pid: number | undefined; logFile: string } {
  const course = COURSE_SERVICES[service];
  return { pid: course.pid(), logFile: displayPath(course.logFile()) };
}

/** Exact steps to get the services on a machine where the course cannot provision them itself. */
export function nativeInstructions(services: readonly ServiceName[]): string {
  const labels = services.map((service) => SERVICES[service].label).join(', ');
  const packages = missingPackages(services);
  const lines = [`To get ${labels}, use any one of these:`];
  if (isDebian()) {
    if (packages.length > 0) {
      lines.push(`  • Install the Debian packages, then let the course run them:`);
      lines.push(`      sudo apt-get install -y ${packages.join(' ')}`);
      lines.push(`      npm run infra -- up ${services.join(' ')}`);
    } else {
      lines.push(`  • Let the course start them: npm run infra -- up ${services.join(' ')}`);
    }
  } else {
    lines.push(`  • Run them yourself on their usual ports:`);
    for (const service of services) {
      const spec = SERVICES[service];
      lines.push(`      ${spec.label}: ${spec.host}:${spec.port} (the course connects to ${spec.url})`);
    }
  }
  lines.push(`  • Start a Docker engine: the course then runs them in containers (Testcontainers).`);
  lines.push(`  • Use brokers someone else runs (a workshop server): set`);
  for (const service of services) {
    const spec = SERVICES[service];
    lines.push(`      ${spec.envVar}=${exampleUrl(service)}`);
  }
  lines.push(`See docs/infrastructure.md.`);
  return lines.join('\n');
}

function exampleUrl(service: ServiceName): string {
  return SERVICES[service].url.replace('127.0.0.1', 'workshop-host');
}
