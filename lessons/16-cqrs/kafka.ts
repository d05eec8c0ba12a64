import { Kafka, logLevel } from 'kafkajs';

/**
 * How a consumer group member keeps its place: it heartbeats every `heartbeatInterval`, is declared
 * dead after `sessionTimeout` without one, and must rejoin within `rebalanceTimeout` when the group
 * rebalances. `maxWaitTimeInMs` is how long the broker holds an empty fetch open.
 */
export interface GroupTimings {
  sessionTimeout: number;
  heartbeatInterval: number;
  rebalanceTimeout: number;
  maxWaitTimeInMs: number;
}

/** kafkajs's own defaults: sensible for services that run for days. */
export const DEFAULT_GROUP_TIMINGS: GroupTimings = {
  sessionTimeout: 30_000,
  heartbeatInterval: 3_000,
  rebalanceTimeout: 60_000,
  maxWaitTimeInMs: 5_000,
};

const LOG_LEVELS: Record<string, logLevel> = {
  nothing: logLevel.NOTHING,
  error: logLevel.ERROR,
  warn: logLevel.WARN,
  info: logLevel.INFO,
  debug: logLevel.DEBUG,
};

/** A client for an entrypoint: brokers from KAFKA_BROKERS (comma-separated), quiet by default. */
export function kafkaFromEnv(clientId: string, env: NodeJS.ProcessEnv = process.env): Kafka {
  const brokers = (env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((b) => b.trim()).filter(Boolean);
  const level = LOG_LEVELS[(env.KAFKA_LOG_LEVEL ?? 'warn').toLowerCase()] ?? logLevel.WARN;
  return new Kafka({ clientId, brokers, logLevel: level });
}

/** Group timings from KAFKA_SESSION_TIMEOUT_MS and friends, falling back to the defaults. */
export function groupTimingsFromEnv(env: NodeJS.ProcessEnv = process.env): GroupTimings {
  const read = (name: string, fallback: number): number => {
    const value = Number(env[name]);
    return Number.isFinite(value) && value > 0 ? value : fallback;
  };
  return {
    sessionTimeout: read('KAFKA_SESSION_TIMEOUT_MS', DEFAULT_GROUP_TIMINGS.sessionTimeout),
    heartbeatInterval: read('KAFKA_HEARTBEAT_INTERVAL_MS', DEFAULT_GROUP_TIMINGS.heartbeatInterval),
    rebalanceTimeout: read('KAFKA_REBALANCE_TIMEOUT_MS', DEFAULT_GROUP_TIMINGS.rebalanceTimeout),
    maxWaitTimeInMs: read('KAFKA_MAX_WAIT_MS', DEFAULT_GROUP_TIMINGS.maxWaitTimeInMs),
  };
}

export function requiredEnv(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name]?.trim();
  if (!value) throw new Error(`${name} is not set`);
  return value;
}
