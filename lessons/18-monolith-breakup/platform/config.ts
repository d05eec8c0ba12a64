import { hostname } from 'node:os';

/** What the lesson's processes read from their environment, like deployed services do. */

/** A setting that cannot be used; the entrypoints print its message and exit. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export type Env = NodeJS.ProcessEnv;

export function text(env: Env, name: string, fallback?: string): string {
  const value = env[name]?.trim();
  if (value) return value;
  if (fallback !== undefined) return fallback;
  throw new ConfigError(`${name} is not set`);
}

export function integer(env: Env, name: string, fallback: number, minimum: number): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < minimum) throw new ConfigError(`${name} must be a whole number of ${minimum} or more, got "${raw}"`);
  return value;
}

export function url(env: Env, name: string, fallback: string, protocols: readonly string[]): string {
  const raw = text(env, name, fallback);
  for (const one of raw.split(',')) {
    const protocol = URL.canParse(one.trim()) ? new URL(one.trim()).protocol : undefined;
    if (!protocol || !protocols.includes(protocol)) {
      throw new ConfigError(`${name} must be a ${protocols.map((p) => `${p}//`).join(' or ')} URL, got "${raw}"`);
    }
  }
  return raw;
}

/** A secret for HS256 tokens: 32 bytes or more, as RFC 7518 asks of an HMAC key for SHA-256. */
export function jwtSecret(env: Env): Uint8Array {
  const secret = text(env, 'JWT_SECRET', 'a-course-secret-that-is-only-for-local-runs');
  const bytes = new TextEncoder().encode(secret);
  if (bytes.length < 32) throw new ConfigError(`JWT_SECRET must be at least 32 bytes long, got ${bytes.length}`);
  return bytes;
}

export interface TokenSettings {
  secret: Uint8Array;
  issuer: string;
  audience: string;
}

export function tokenSettings(env: Env): TokenSettings {
  return { secret: jwtSecret(env), issuer: text(env, 'JWT_ISSUER', 'shop-users'), audience: text(env, 'JWT_AUDIENCE', 'shop') };
}

/** Where the service registry and the gateway's route switches live in etcd. */
export interface RegistrySettings {
  /** ETCD_URL: one or more members, comma-separated. */
  etcdUrl: string;
  /** REGISTRY_ROOT: the key prefix of this system ("/shop/"): services/ and routes/ sit under it. */
  root: string;
}

export function registrySettings(env: Env): RegistrySettings {
  const root = text(env, 'REGISTRY_ROOT', '/shop/');
  return { etcdUrl: url(env, 'ETCD_URL', 'http://127.0.0.1:2379', ['http:', 'https:']), root: root.endsWith('/') ? root : `${root}/` };
}

export function etcdHosts(etcdUrl: string): string[] {
  return etcdUrl.split(',').map((host) => host.trim()).filter((host) => host.length > 0);
}

/** Everything a service process of the new system reads. */
export interface ServiceConfig {
  service: string;
  /** PORT (0: any free port) and HOST: where it listens, and so the address it registers. */
  port: number;
  host: string;
  /** DATABASE_URL: the service's own role and schema (see platform/provision.ts). */
  databaseUrl: string;
  /** AMQP_URL, EVENTS_EXCHANGE (a topic exchange), QUEUE_PREFIX (its queues are "<prefix>.<service>.<event>"). */
  amqpUrl: string;
  exchange: string;
  queuePrefix: string;
  registry: RegistrySettings;
  /** LEASE_TTL_SECONDS: how long the registry keeps a silent instance. */
  leaseTtlSeconds: number;
  /** INSTANCE_ID: unique per process; the registry key and the X-Served-By header. */
  instanceId: string;
  /** OUTBOX_POLL_MS: how often an idle outbox relay looks for new events. */
  outboxPollMs: number;
}

export function loadServiceConfig(service: string, env: Env = process.env): ServiceConfig {
  return {
    service,
    port: integer(env, 'PORT', 0, 0),
    host: text(env, 'HOST', '127.0.0.1'),
    databaseUrl: url(env, 'DATABASE_URL', 'postgres://postgres:postgres@127.0.0.1:5432/postgres', ['postgres:', 'postgresql:']),
    amqpUrl: url(env, 'AMQP_URL', 'amqp://guest:guest@127.0.0.1:5672', ['amqp:', 'amqps:']),
    exchange: text(env, 'EVENTS_EXCHANGE', 'shop.events'),
    queuePrefix: text(env, 'QUEUE_PREFIX', 'shop'),
    registry: registrySettings(env),
    leaseTtlSeconds: integer(env, 'LEASE_TTL_SECONDS', 10, 1),
    instanceId: text(env, 'INSTANCE_ID', `${service}-${hostname()}-${process.pid}`),
    outboxPollMs: integer(env, 'OUTBOX_POLL_MS', 100, 1),
  };
}
