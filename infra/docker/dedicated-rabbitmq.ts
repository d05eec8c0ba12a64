import { freePort } from '../net.ts';
import { probeRabbitMq, waitUntilReady } from '../probes.ts';
import { AMQP_PORT, IMAGES } from './containers.ts';

/**
 * A RabbitMQ container for one check only. Its AMQP port is bound to a fixed host port so that
 * a restart keeps the same URL (Docker may pick a new random port when a container restarts).
 * Not reused: Testcontainers removes it when the check process ends, even after a crash.
 */

export interface DockerDedicatedRabbit {
  url: string;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startDockerDedicatedRabbit(): Promise<DockerDedicatedRabbit> {
  const { RabbitMQContainer } = await import('@testcontainers/rabbitmq');
  for (let attempt = 1; ; attempt += 1) {
    const hostPort = await freePort();
    try {
      const container = await new RabbitMQContainer(IMAGES.rabbitmq)
        .withExposedPorts({ container: AMQP_PORT, host: hostPort })
        .withStartupTimeout(120_000)
        .start();
      const url = `amqp://guest:guest@${container.getHost()}:${hostPort}`;
      const ready = () =>
        waitUntilReady(() => probeRabbitMq(url), {
          what: `the dedicated RabbitMQ container ${container.getId().slice(0, 12)}`,
          timeoutMs: 60_000,
          logFile: `docker logs ${container.getId().slice(0, 12)}`,
        });
      await ready();
      return {
        url,
        async restart() {
          // A graceful stop (up to 10 s), as an operator's restart would do, then a fresh start.
          await container.restart({ timeout: 10 });
          await ready();
        },
        async stop() {
          await container.stop({ remove: true, removeVolumes: true });
        },
      };
    } catch (error) {
      // The port picked here may be taken on the Docker host (a remote engine): pick another.
      if (attempt >= 3 || !/port is already allocated|address already in use/i.test(String(error))) throw error;
    }
  }
}
