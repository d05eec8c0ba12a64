import { learnerPrefix } from './learner.ts';

/** What this lesson's processes read from their environment, like a deployed service does. */
export interface WorkerConfig {
  redisUrl: string;
  /** SIGNUP_STREAM: by default "<learner>:signups" (see learner.ts). */
  stream: string;
  /** STREAM_MAX_LENGTH: the producer keeps about this many entries. */
  maxLength: number;
  consumer: {
    /** CONSUMER_GROUP: one group per service that reads the log ("<learner>:email-service" by default). */
    group: string;
    /** CONSUMER_NAME: must stay the same when this instance restarts (e.g. the pod or host name). */
    consumer: string;
    /** DEAD_LETTER_STREAM */
    deadLetterStream: string;
    /** BATCH_SIZE: entries per read. */
    batchSize: number;
    /** BLOCK_MS: how long one read waits for new entries. */
    blockMs: number;
    /** CLAIM_MIN_IDLE_MS: how long an entry stays pending before another consumer may claim it. */
    claimMinIdleMs: number;
    /** CLAIM_INTERVAL_MS: how often to look for such entries. */
    claimIntervalMs: number;
    /** MAX_DELIVERIES: an entry delivered more often than this is dead-lettered. */
    maxDeliveries: number;
  };
  /** The simulated mail provider: MAILER_DELAY_MS, MAILER_FAILS_FOR (comma-separated addresses). */
  mailer: { delayMs: number; failFor: string[] };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  // By default the names start with the learner's prefix (COURSE_LEARNER, or user@host), so learners
  // sharing one Redis never read each other's signups.
  const prefix = learnerPrefix(env);
  const stream = env.SIGNUP_STREAM ?? `${prefix}signups`;
  return {
    redisUrl: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    stream,
    maxLength: integer(env, 'STREAM_MAX_LENGTH', 10_000),
    consumer: {
      group: env.CONSUMER_GROUP ?? `${prefix}email-service`,
      consumer: env.CONSUMER_NAME ?? 'email-1',
      deadLetterStream: env.DEAD_LETTER_STREAM ?? `${stream}:dead`,
      batchSize: integer(env, 'BATCH_SIZE', 10),
      blockMs: integer(env, 'BLOCK_MS', 2_000),
      claimMinIdleMs: integer(env, 'CLAIM_MIN_IDLE_MS', 30_000),
      claimIntervalMs: integer(env, 'CLAIM_INTERVAL_MS', 5_000),
      maxDeliveries: integer(env, 'MAX_DELIVERIES', 5),
    },
    mailer: {
      delayMs: integer(env, 'MAILER_DELAY_MS', 50),
      failFor: (env.MAILER_FAILS_FOR ?? '').split(',').map((address) => address.trim()).filter(Boolean),
    },
  };
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a whole number of 0 or more, got "${raw}"`);
  return value;
}
