import type { StartedTestContainer } from 'testcontainers';
import type { ServiceName } from '../services.ts';
import { startKafkaContainer } from './kafka.ts';

/**
 * The course's containers, started through Testcontainers with reuse: a container keeps running
 * after the test run, and the next run with the same definition gets it back instead of starting
 * another (Testcontainers matches them by a hash of the definition).
 */

export const IMAGES: Record<ServiceName, string> = {
  redis: 'redis:7.4-alpine',
  rabbitmq: 'rabbitmq:3.13-management-alpine',
  kafka: 'apache/kafka:3.9.1',
  postgres: 'postgres:16-alpine',
};

/** Every container the course starts carries this label, with the service as its value. */
export const SERVICE_LABEL = 'org.event-driven-course.service';

export interface CourseContainer {
  url: string;
  container: StartedTestContainer;
}

export const AMQP_PORT = 5672;

export function amqpUrl(container: StartedTestContainer): string {
  return `amqp://guest:guest@${container.getHost()}:${container.getMappedPort(AMQP_PORT)}`;
}

const starters: Record<ServiceName, () => Promise<CourseContainer>> = {
  async redis() {
    const { RedisContainer } = await import('@testcontainers/redis');
    const container = await new RedisContainer(IMAGES.redis).withLabels({ [SERVICE_LABEL]: 'redis' }).withReuse().start();
    return { url: container.getConnectionUrl(), container };
  },
  async rabbitmq() {
    const { RabbitMQContainer } = await import('@testcontainers/rabbitmq');
    const container = await new RabbitMQContainer(IMAGES.rabbitmq)
      .withLabels({ [SERVICE_LABEL]: 'rabbitmq' })
      .withStartupTimeout(120_000)
      .withReuse()
      .start();
    return { url: amqpUrl(container), container };
  },
  async postgres() {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer(IMAGES.postgres)
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
  kafka: () => startKafkaContainer({ [SERVICE_LABEL]: 'kafka' }, IMAGES.kafka),
};

export function startCourseContainer(service: ServiceName): Promise<CourseContainer> {
  return starters[service]();
}
