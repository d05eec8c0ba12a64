import { withSchema, type SchemaName } from './db.ts';

/** The three services of the saga, each with its own database schema and its own queue. */
export const SERVICES = {
  'order-service': { schema: 'orders', queueVariable: 'ORDER_QUEUE' },
  'inventory-service': { schema: 'inventory', queueVariable: 'INVENTORY_QUEUE' },
  'payment-service': { schema: 'payments', queueVariable: 'PAYMENT_QUEUE' },
} as const satisfies Record<string, { schema: SchemaName; queueVariable: string }>;

export type ServiceName = keyof typeof SERVICES;

/** What every service reads from its environment, like a deployed service does. */
export interface ServiceConfig {
  service: ServiceName;
  amqpUrl: string;
  /** The service's own database: the connection string sets search_path to its schema. */
  databaseUrl: string;
  /** SAGA_EXCHANGE: the topic exchange every saga event is published on. */
  exchange: string;
  /** ORDER_QUEUE, INVENTORY_QUEUE or PAYMENT_QUEUE: this service's own durable queue. */
  queue: string;
}

/** A setting that cannot be used: the entrypoint prints the message and exits. */
export class ConfigError extends Error {}

const LOCAL_DATABASE = 'postgres://postgres:postgres@127.0.0.1:5432/postgres';

export function loadConfig(service: ServiceName, env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  const { schema, queueVariable } = SERVICES[service];
  return {
    service,
    amqpUrl: env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
    // Without DATABASE_URL, a local database in a schema named after the service.
    databaseUrl: env.DATABASE_URL ?? withSchema(LOCAL_DATABASE, schema),
    exchange: name(env, 'SAGA_EXCHANGE', 'saga.events'),
    queue: name(env, queueVariable, `${service}.saga`),
  };
}

/** A whole number of milliseconds (or cents) from the environment, within bounds. */
export function integerSetting(env: NodeJS.ProcessEnv, variable: string, fallback: number, min: number, max: number): number {
  const raw = env[variable];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${variable} must be a whole number from ${min} to ${max}, not "${raw}"`);
  }
  return value;
}

function name(env: NodeJS.ProcessEnv, variable: string, fallback: string): string {
  const value = env[variable] ?? fallback;
  if (!/^[\w.:-]{1,200}$/.test(value)) throw new ConfigError(`${variable} must be a name of letters, digits, '.', '_', ':' or '-', not "${value}"`);
  return value;
}
