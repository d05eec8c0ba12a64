import type { ServiceName } from './services.ts';
import { ServiceError } from './errors.ts';

/**
 * Protocol-level readiness: a service is ready when it answers its own protocol, not when its
 * port is open (RabbitMQ and Kafka open theirs before they can serve, PostgreSQL answers
 * "the database system is starting up" for a while). Client libraries load on first use, so
 * that finding services already running stays quick.
 */

const CONNECT_TIMEOUT_MS = 3_000;

export async function probeRedis(url: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    const reply = await client.ping();
    if (reply !== 'PONG') throw new Error(`PING answered ${reply}`);
  } finally {
    client.disconnect();
  }
}

export async function probeRabbitMq(url: string): Promise<void> {
  const { connect } = await import('amqplib');
  const connection = await connect(url, { timeout: CONNECT_TIMEOUT_MS });
  connection.on('error', () => {});
  await connection.close();
}

export async function probeKafka(brokers: string): Promise<void> {
  const { Kafka, logLevel } = await import('kafkajs');
  const kafka = new Kafka({
    clientId: 'course-readiness',
    brokers: brokers.split(',').map((broker) => broker.trim()),
    logLevel: logLevel.NOTHING,
    connectionTimeout: CONNECT_TIMEOUT_MS,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    if (cluster.brokers.length === 0) throw new Error('the cluster lists no brokers yet');
    if (cluster.controller === null || cluster.controller < 0) throw new Error('the cluster has no controller yet');
    await admin.listTopics();
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** The brokers a Kafka cluster advertises, as host:port (to spot a stale advertised listener). */
export async function advertisedKafkaBrokers(brokers: string): Promise<string[]> {
  const { Kafka, logLevel } = await import('kafkajs');
  const kafka = new Kafka({ clientId: 'course-readiness', brokers: [brokers], logLevel: logLevel.NOTHING, retry: { retries: 0 } });
  const admin = kafka.admin();
  try {
    await admin.connect();
    return (await admin.describeCluster()).brokers.map((b) => `${b.host}:${b.port}`);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

export async function probePostgres(url: string): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
  } finally {
    await client.end().catch(() => {});
  }
}

/** etcd is ready when its member knows a leader and answers a read (ETCD_URL may list several members). */
export async function probeEtcd(url: string): Promise<void> {
  const { Etcd3 } = await import('etcd3');
  const client = new Etcd3({
    hosts: url.split(',').map((host) => host.trim()),
    dialTimeout: CONNECT_TIMEOUT_MS,
    defaultCallOptions: () => ({ deadline: Date.now() + CONNECT_TIMEOUT_MS }),
  });
  try {
    const status = await client.maintenance.status();
    if (!status.leader || status.leader === '0') throw new Error('the member knows no leader yet');
    await client.get('course-readiness').string();
  } finally {
    client.close();
  }
}

export const PROBES: Record<ServiceName, (url: string) => Promise<void>> = {
  redis: probeRedis,
  rabbitmq: probeRabbitMq,
  kafka: probeKafka,
  postgres: probePostgres,
  etcd: probeEtcd,
};

export interface ReadinessOptions {
  /** What is starting, for messages: "RabbitMQ on 127.0.0.1:5672". */
  what: string;
  timeoutMs: number;
  /** Where the service logs, quoted when it does not come up. */
  logFile?: string;
  /** False once the service process has died: no point waiting for the deadline then. */
  alive?: () => boolean;
}

/** Polls a probe until it succeeds; fails with the last error and where to read the log. */
export async function waitUntilReady(probe: () => Promise<void>, options: ReadinessOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  const logHint = options.logFile ? `\nIts log: ${options.logFile}` : '';
  let lastError: string;
  for (;;) {
    try {
      await probe();
      return;
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
    }
    if (options.alive && !options.alive()) {
      throw new ServiceError(`${options.what} stopped while starting (last error: ${lastError}).${logHint}`);
    }
    if (Date.now() > deadline) {
      throw new ServiceError(
        `${options.what} was not ready after ${Math.round(options.timeoutMs / 1000)} s (last error: ${lastError}).${logHint}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
