/** The bull queues of this lesson. Every key bull writes for them is "<prefix>:<queue>:...". */
export const EMAIL_QUEUE = 'emails';
export const REPORT_QUEUE = 'reports';

/** What the server and the worker both need to open the same queues with the same behaviour. */
export interface QueueConfig {
  redisUrl: string;
  /** QUEUE_PREFIX: the first part of every key bull writes ("bull" is bull's own default). */
  prefix: string;
  /** How bull notices a worker that died in the middle of a job. */
  stall: {
    /** LOCK_DURATION_MS: a job's lock lives this long unless its worker renews it (at half of it). */
    lockDurationMs: number;
    /** STALLED_INTERVAL_MS: how often a worker looks for active jobs whose lock has expired. */
    stalledIntervalMs: number;
    /** MAX_STALLED_COUNT: how many times a job may be found stalled and run again before it fails. */
    maxStalledCount: number;
  };
  /** How a welcome email that could not be sent is retried. */
  emailRetry: {
    /** EMAIL_ATTEMPTS: attempts in all, the first one included. */
    attempts: number;
    /** EMAIL_BACKOFF_MS: the base of the exponential backoff. */
    backoffDelayMs: number;
    /** EMAIL_MAX_BACKOFF_MS: no wait between two attempts is longer than this. */
    maxBackoffMs: number;
  };
  /** REPORT_RATE_MAX reports started per REPORT_RATE_DURATION_MS, for each account. */
  reportRateLimit: { max: number; durationMs: number };
}

export interface ServerConfig {
  /** PORT */
  port: number;
  queues: QueueConfig;
}

export interface WorkerConfig {
  queues: QueueConfig;
  /** EMAIL_CONCURRENCY and REPORT_CONCURRENCY: jobs of each queue this worker runs at a time. */
  concurrency: { emails: number; reports: number };
  /** The simulated mail provider: MAILER_REPLY_MS, MAILER_FAILS_FOR (comma-separated addresses). */
  mailer: { replyMs: number; failFor: string[] };
  /** REPORT_WORK_MS: how long the simulated report takes to build. */
  reportWorkMs: number;
}

export function loadQueueConfig(env: NodeJS.ProcessEnv = process.env): QueueConfig {
  const prefix = env.QUEUE_PREFIX ?? 'bull';
  // Braces make it a Redis Cluster hash tag: "{jobs}" keeps every key of the queues in one slot.
  if (!/^[\w.{}-]+$/.test(prefix)) throw new Error(`QUEUE_PREFIX must be letters, digits, ".", "-", "_" or braces, got "${prefix}"`);
  return {
    redisUrl: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    prefix,
    stall: {
      lockDurationMs: integer(env, 'LOCK_DURATION_MS', 30_000, 1),
      stalledIntervalMs: integer(env, 'STALLED_INTERVAL_MS', 30_000, 1),
      maxStalledCount: integer(env, 'MAX_STALLED_COUNT', 1, 0),
    },
    emailRetry: {
      attempts: integer(env, 'EMAIL_ATTEMPTS', 5, 1),
      backoffDelayMs: integer(env, 'EMAIL_BACKOFF_MS', 1_000, 1),
      maxBackoffMs: integer(env, 'EMAIL_MAX_BACKOFF_MS', 60_000, 1),
    },
    reportRateLimit: {
      max: integer(env, 'REPORT_RATE_MAX', 5, 1),
      durationMs: integer(env, 'REPORT_RATE_DURATION_MS', 60_000, 1),
    },
  };
}

export function loadServerConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  return { port: integer(env, 'PORT', 3000, 0), queues: loadQueueConfig(env) };
}

export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  return {
    queues: loadQueueConfig(env),
    concurrency: {
      emails: integer(env, 'EMAIL_CONCURRENCY', 5, 1),
      reports: integer(env, 'REPORT_CONCURRENCY', 2, 1),
    },
    mailer: {
      replyMs: integer(env, 'MAILER_REPLY_MS', 100, 0),
      failFor: (env.MAILER_FAILS_FOR ?? '').split(',').map((address) => address.trim()).filter(Boolean),
    },
    reportWorkMs: integer(env, 'REPORT_WORK_MS', 2_000, 0),
  };
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) throw new Error(`${name} must be a whole number of ${min} or more, got "${raw}"`);
  return value;
}
