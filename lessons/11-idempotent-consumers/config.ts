/** What this lesson's processes read from their environment, like a deployed service does. */
export interface ConsumerConfig {
  /** AMQP_URL */
  amqpUrl: string;
  /** DATABASE_URL */
  databaseUrl: string;
  /** PAYMENT_QUEUE: the queue this subscriber consumes (its dead-letter queue is `<queue>.dead`). */
  queue: string;
  /** SUBSCRIBER: the name this consumer records its processed events under. */
  subscriber: string;
  /** CONSUMER_NAME: used in log lines only. Defaults to `<subscriber>-<pid>`. */
  name: string;
  /** PREFETCH: deliveries worked on at a time (each holds one database connection). */
  prefetch: number;
  /** CRASH_AFTER_COMMIT=1: kill the process with SIGKILL after the first commit, before its ack. */
  crashAfterCommit: boolean;
}

/** A setting that cannot be used; the message names it and says what is expected. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): ConsumerConfig {
  const subscriber = text(env, 'SUBSCRIBER', 'payments');
  return {
    amqpUrl: text(env, 'AMQP_URL', 'amqp://guest:guest@127.0.0.1:5672'),
    databaseUrl: text(env, 'DATABASE_URL', 'postgres://postgres:postgres@127.0.0.1:5432/postgres'),
    queue: text(env, 'PAYMENT_QUEUE', 'payments.requested'),
    subscriber,
    name: text(env, 'CONSUMER_NAME', `${subscriber}-${process.pid}`),
    prefetch: positiveInteger(env, 'PREFETCH', 5),
    crashAfterCommit: flag(env, 'CRASH_AFTER_COMMIT'),
  };
}

function text(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const raw = env[name];
  if (raw === undefined) return fallback;
  if (raw.trim() === '') throw new ConfigError(`${name} is set but empty`);
  return raw.trim();
}

function positiveInteger(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new ConfigError(`${name} must be a whole number of 1 or more, got "${raw}"`);
  return value;
}

function flag(env: NodeJS.ProcessEnv, name: string): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '' || raw === '0') return false;
  if (raw === '1') return true;
  throw new ConfigError(`${name} must be 1 or 0, got "${raw}"`);
}
