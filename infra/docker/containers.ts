import type { StartedTestContainer } from 'testcontainers';
import { SERVICES, type ServiceName } from '../services.ts';
import { startKafkaContainer } from './kafka.ts';

/**
 * The course's containers, started through Testcontainers with reuse: a container keeps running
 * after the test run, and the next run with the same definition gets it back instead of starting
 * another (Testcontainers matches them by a hash of the definition).
 */

/** Every container the course starts carries this label, with the service as its value. */
export const SERVICE_LABEL = 'org.event-driven-course.service';

export interface CourseContainer {
  url: string;
  container: StartedTestContainer;
}

/** The service's URL at the container's mapped port. */
export function containerUrl(service: ServiceName, container: StartedTestContainer): string {
  return SERVICES[service].urlFor(container.getHost(), container.getMappedPort(SERVICES[service].containerPort));
}

const starters: Record<ServiceName, () => Promise<CourseContainer>> = {
  async redis() {
    const { RedisContainer } = await import('@testcontainers/redis');
    const container = await new RedisContainer(SERVICES.redis.image).withLabels({ [SERVICE_LABEL]: 'redis' }).withReuse().start();
    return { url: container.getConnectionUrl(), container };
  },
  async rabbitmq() {
    const { RabbitMQContainer } = await import('@testcontainers/rabbitmq');
    const container = await new RabbitMQContainer(SERVICES.rabbitmq.image)
      .withLabels({ [SERVICE_LABEL]: 'rabbitmq' })
      .withStartupTimeout(120_000)
      .withReuse()
      .start();
    return { url: containerUrl('rabbitmq', container), container };
  },
  async postgres() {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer(SERVICES.postgres.image)
      .withUsername('postgres')
      .withPassword('postgres')
      .withDatabase('postgres')
      // Several check files may each hold a pool at the same time.
      .withCommand(['postgres', '-c', 'max_connections=200'])
      .withLabels({ [SERVICE_LABEL]: 'postgres' })
      .withReuse()
      .start();
    return { url: container.getConnectionUri(), container };
  },
  kafka: () => startKafkaContainer({ [SERVICE_LABEL]: 'kafka' }, SERVICES.kafka.image),
};

export function startCourseContainer(service: ServiceName): Promise<CourseContainer> {
  return starters[service]();
}
