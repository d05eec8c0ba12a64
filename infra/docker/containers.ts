import type { GenericContainer, StartedTestContainer } from 'testcontainers';
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
  async etcd() {
    const container = await (await etcdContainer(SERVICES.etcd.containerPort)).withLabels({ [SERVICE_LABEL]: 'etcd' }).withReuse().start();
    return { url: containerUrl('etcd', container), container };
  },
};

/**
 * One etcd member, told to listen on every interface of the container (by default it listens on
 * its localhost only). 3.4's plain log and 3.5's JSON log both contain the ready line.
 */
export async function etcdContainer(ports: number | { container: number; host: number }): Promise<GenericContainer> {
  const { GenericContainer, Wait } = await import('testcontainers');
  return new GenericContainer(SERVICES.etcd.image)
    .withCommand(['etcd', '--listen-client-urls', 'http://0.0.0.0:2379', '--advertise-client-urls', 'http://0.0.0.0:2379'])
    .withExposedPorts(ports)
    .withWaitStrategy(Wait.forLogMessage('ready to serve client requests'));
}

export function startCourseContainer(service: ServiceName): Promise<CourseContainer> {
  return starters[service]();
}
