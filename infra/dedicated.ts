import { startDockerDedicatedRabbit } from './docker/dedicated-rabbitmq.ts';
import { startNativeDedicatedRabbit } from './native/dedicated-rabbitmq.ts';
import { dockerEngineAvailable } from './providers/docker.ts';
import type { ServiceName } from './services.ts';

/**
 * Brokers a single check owns, separate from the shared ones every check uses. A check that
 * restarts a broker (to prove durable queues and persistent messages survive) does it on its
 * own instance, so checks running at the same time on the shared broker are not disturbed.
 */

/** Services that can have a dedicated instance (more may follow). */
export type DedicatedService = Extract<ServiceName, 'rabbitmq'>;

export interface DedicatedBroker {
  /** Where to connect (amqp://guest:guest@host:port); the same before and after restart(). */
  url: string;
  /** Stops the broker process for real and starts it again; resolves once it accepts connections, data kept. */
  restart(): Promise<void>;
  /** Stops the broker and deletes it with its data. */
  stop(): Promise<void>;
}

export interface DedicatedOptions {
  /** Progress lines (installing RabbitMQ on a fresh machine may take a minute). */
  onProgress?: (message: string) => void;
}

/**
 * Starts a broker of its own for the caller: in a container when a Docker engine answers,
 * otherwise as a separate RabbitMQ node on this machine (installing rabbitmq-server if needed).
 * Addresses from AMQP_URL are not used: a shared workshop broker must not be restarted.
 */
export async function startDedicatedBroker(
  service: DedicatedService,
  options: DedicatedOptions = {},
): Promise<DedicatedBroker> {
  const progress = options.onProgress ?? (() => {});
  switch (service) {
    case 'rabbitmq':
      return (await dockerEngineAvailable()) ? startDockerDedicatedRabbit() : startNativeDedicatedRabbit(progress);
  }
}
