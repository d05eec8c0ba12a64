/** What this lesson's processes read from their environment, like a deployed service does. */

/** A setting that cannot be used; the entrypoints print its message and exit. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface ServerConfig {
  /** DATABASE_URL */
  databaseUrl: string;
  /** PORT */
  port: number;
}

export interface RelayConfig {
  /** DATABASE_URL: the order service's database, where the outbox is. */
  databaseUrl: string;
  /** AMQP_URL */
  amqpUrl: string;
  /** OUTBOX_EXCHANGE: the topic exchange the events go to. */
  exchange: string;
  /** RELAY_NAME: used in log lines. */
  name: string;
  /** RELAY_AGGREGATES_PER_BATCH */
  aggregatesPerBatch: number;
  /** RELAY_EVENTS_PER_AGGREGATE */
  eventsPerAggregate: number;
  /** RELAY_POLL_MS: how often an idle relay looks at the outbox. */
  pollIntervalMs: number;
  /** RELAY_PUBLISH_TIMEOUT_MS: how long to wait for a confirm before dropping the connection. */
  publishTimeoutMs: number;
  /** RELAY_CONNECT_TIMEOUT_MS */
  connectTimeoutMs: number;
  /** RELAY_BACKOFF_INITIAL_MS and RELAY_BACKOFF_MAX_MS: delays after failed rounds. */
  backoff: { initialMs: number; maxMs: number };
}

const DEFAULT_DATABASE_URL = 'postgres://postgres:postgres@127.0.0.1:5432/postgres';

/** DATABASE_URL, or the course's local PostgreSQL. */
export function databaseUrl(env: NodeJS.ProcessEnv = process.env): string {
  return env.DATABASE_URL ?? DEFAULT_DATABASE_URL;
}

export function loadServerConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  return {
    databaseUrl: databaseUrl(env),
    port: integer(env, 'PORT', 3000, 1),
  };
}

export function loadRelayConfig(env: NodeJS.ProcessEnv = process.env): RelayConfig {
  const backoff = {
    initialMs: integer(env, 'RELAY_BACKOFF_INITIAL_MS', 100, 1),
    maxMs: integer(env, 'RELAY_BACKOFF_MAX_MS', 10_000, 1),
  };
  if (backoff.maxMs < backoff.initialMs) {
    throw new ConfigError(`RELAY_BACKOFF_MAX_MS (${backoff.maxMs}) must not be below RELAY_BACKOFF_INITIAL_MS (${backoff.initialMs})`);
  }
  return {
    databaseUrl: databaseUrl(env),
    amqpUrl: amqpUrl(env),
    exchange: env.OUTBOX_EXCHANGE ?? 'orders.events',
    name: env.RELAY_NAME ?? `relay-${process.pid}`,
    aggregatesPerBatch: integer(env, 'RELAY_AGGREGATES_PER_BATCH', 50, 1),
    eventsPerAggregate: integer(env, 'RELAY_EVENTS_PER_AGGREGATE', 20, 1),
    pollIntervalMs: integer(env, 'RELAY_POLL_MS', 250, 1),
    publishTimeoutMs: integer(env, 'RELAY_PUBLISH_TIMEOUT_MS', 5_000, 1),
    connectTimeoutMs: integer(env, 'RELAY_CONNECT_TIMEOUT_MS', 5_000, 1),
    backoff,
  };
}

function amqpUrl(env: NodeJS.ProcessEnv): string {
  const raw = env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
  const protocol = URL.canParse(raw) ? new URL(raw).protocol : undefined;
  if (protocol !== 'amqp:' && protocol !== 'amqps:') throw new ConfigError(`AMQP_URL must be an amqp:// or amqps:// URL, got "${raw}"`);
  return raw;
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, minimum: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < minimum) throw new ConfigError(`${name} must be a whole number of ${minimum} or more, got "${raw}"`);
  return value;
}
