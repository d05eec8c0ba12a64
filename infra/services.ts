import { ExpectedError } from './errors.ts';

/**
 * The five services the course can grade against, and how each one is addressed.
 * Every other part of the course (runner, checks, providers) speaks in these terms.
 */
export const SERVICE_NAMES = ['redis', 'rabbitmq', 'kafka', 'postgres', 'etcd'] as const;

export type ServiceName = (typeof SERVICE_NAMES)[number];

export type ProviderName = 'env' | 'docker' | 'native';

/** Where a service can be reached, and which provider made it reachable. */
export interface ServiceEndpoint {
  service: ServiceName;
  /** redis://…, amqp://…, host:port[,host:port] for Kafka, postgres://…, http://… for etcd */
  url: string;
  provider: ProviderName;
  /** A short human description, e.g. "container 3f2a…" or "native, started by the course". */
  detail: string;
}

export type ServiceEndpoints = Partial<Record<ServiceName, ServiceEndpoint>>;

export interface ServiceSpec {
  envVar: string;
  /** The address a native install listens on by default, used to probe and to build the URL. */
  host: string;
  port: number;
  /** The URL on the default host and port. */
  url: string;
  /** The URL of an instance at host:port (a container's mapped port, a private instance's port). */
  urlFor(host: string, port: number): string;
  /** The image the Docker provider runs, and the port the service listens on inside it. */
  image: string;
  containerPort: number;
  label: string;
}

function spec(facts: Omit<ServiceSpec, 'url'>): ServiceSpec {
  return { ...facts, url: facts.urlFor(facts.host, facts.port) };
}

/** The one table of service facts that the env, Docker and native providers all read. */
export const SERVICES: Record<ServiceName, ServiceSpec> = {
  redis: spec({
    envVar: 'REDIS_URL',
    host: '127.0.0.1',
    port: 6379,
    urlFor: (host, port) => `redis://${host}:${port}`,
    image: 'redis:7.4-alpine',
    containerPort: 6379,
    label: 'Redis',
  }),
  rabbitmq: spec({
    envVar: 'AMQP_URL',
    host: '127.0.0.1',
    port: 5672,
    urlFor: (host, port) => `amqp://guest:guest@${host}:${port}`,
    image: 'rabbitmq:3.13-management-alpine',
    containerPort: 5672,
    label: 'RabbitMQ',
  }),
  kafka: spec({
    envVar: 'KAFKA_BROKERS',
    host: '127.0.0.1',
    port: 9092,
    urlFor: (host, port) => `${host}:${port}`,
    image: 'apache/kafka:3.9.1',
    containerPort: 9092,
    label: 'Apache Kafka',
  }),
  postgres: spec({
    envVar: 'DATABASE_URL',
    host: '127.0.0.1',
    port: 5432,
    urlFor: (host, port) => `postgres://postgres:postgres@${host}:${port}/postgres`,
    image: 'postgres:16-alpine',
    containerPort: 5432,
    label: 'PostgreSQL',
  }),
  etcd: spec({
    envVar: 'ETCD_URL',
    host: '127.0.0.1',
    port: 2379,
    urlFor: (host, port) => `http://${host}:${port}`,
    image: 'quay.io/coreos/etcd:v3.5.17',
    containerPort: 2379,
    label: 'etcd',
  }),
};

export function isServiceName(value: string): value is ServiceName {
  return (SERVICE_NAMES as readonly string[]).includes(value);
}

/** The environment variables a process needs to reach the given endpoints. */
export function endpointEnv(endpoints: ServiceEndpoints): Record<string, string> {
  const env: Record<string, string> = {};
  for (const endpoint of Object.values(endpoints)) {
    if (endpoint) env[SERVICES[endpoint.service].envVar] = endpoint.url;
  }
  return env;
}

/** One line for people: "Redis        redis://127.0.0.1:6379 (native: …)". */
export function describeEndpoint(endpoint: ServiceEndpoint): string {
  return `${SERVICES[endpoint.service].label.padEnd(12)} ${endpoint.url} (${endpoint.provider}: ${endpoint.detail})`;
}

/** Raised when no provider can serve a service; its message says what was tried and how to fix it. */
export class ServiceUnavailableError extends ExpectedError {
  constructor(
    readonly service: ServiceName,
    readonly tried: string,
    readonly howToFix: string,
  ) {
    super(`${SERVICES[service].label} is not reachable (tried ${tried}).\n${howToFix}`);
    this.name = 'ServiceUnavailableError';
  }
}
