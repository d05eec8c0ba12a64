import { startDockerDedicated } from './docker/dedicated.ts';
import { ExpectedError } from './errors.ts';
import { canProvisionNatively } from './providers/native.ts';
import { startNativeDedicated } from './native/dedicated.ts';
import { dockerEngineAvailable } from './providers/docker.ts';
import { SERVICES, type ServiceName } from './services.ts';

/**
 * Private instances a single check owns, separate from the shared ones every check uses. A check
 * that takes a service down (a broker outage, a database restart, a crash) does it to its own
 * instance, so checks running at the same time on the shared services are not disturbed, and a
 * shared workshop broker is never touched: addresses from REDIS_URL, AMQP_URL, KAFKA_BROKERS and
 * DATABASE_URL are not used here.
 */

export interface DedicatedInstance {
  service: ServiceName;
  /** Where to connect; the same before and after stop() and start(). */
  url: string;
  /** "private container 3f2a…" or "private instance in .course/services/dedicated/…". */
  detail: string;
  /** An outage: the service stops (gracefully, or with `kill` as a crash); its data is kept. */
  stop(options?: { kill?: boolean }): Promise<void>;
  /** Ends the outage: starts it again on the same address; resolves once it answers its protocol. */
  start(): Promise<void>;
  /** stop() then start(): a graceful restart, as an operator's would be. */
  restart(): Promise<void>;
  /** Hands the instance back (kept warm for the next check where that is safe, otherwise deleted). */
  release(): Promise<void>;
}

export interface DedicatedOptions {
  /** Progress lines (installing a service on a fresh machine may take a minute). */
  onProgress?: (message: string) => void;
}

/** Raised when no provider here can start a private instance; the requirement is then not graded. */
export class DedicatedUnavailableError extends ExpectedError {
  constructor(readonly service: ServiceName, reason: string) {
    super(`a private ${SERVICES[service].label} cannot be started here: ${reason}`);
    this.name = 'DedicatedUnavailableError';
  }
}

/**
 * Starts a private instance of a service: a container when a Docker engine answers, otherwise a
 * separate node on this machine (installing the service's package if needed).
 */
export async function startDedicated(service: ServiceName, options: DedicatedOptions = {}): Promise<DedicatedInstance> {
  const progress = options.onProgress ?? (() => {});
  let instance: Omit<DedicatedInstance, 'restart' | 'service'>;
  if (await dockerEngineAvailable()) {
    instance = await startDockerDedicated(service);
  } else if (await canProvisionNatively([service])) {
    instance = await startNativeDedicated(service, progress);
  } else {
    throw new DedicatedUnavailableError(
      service,
      'there is no Docker engine, and the course cannot install and run it on this machine (it needs Linux with the ' +
        'service installed, or Debian/Ubuntu with root or passwordless sudo). See docs/instructors.md.',
    );
  }
  return {
    ...instance,
    service,
    async restart() {
      await instance.stop();
      await instance.start();
    },
  };
}
