import { channelFor, userEventsPattern } from './channels.ts';
import { learnerPrefix } from './learner.ts';

/** What every process of this lesson reads from its environment, like a deployed service does. */
export interface ServiceConfig {
  redisUrl: string;
  /**
   * CHANNEL_PREFIX: put in front of every channel and key name. By default the learner's own
   * prefix (COURSE_LEARNER, or user@host, and a colon), so learners sharing one Redis stay apart.
   */
  channelPrefix: string;
  signupChannel: string;
  userEventsPattern: string;
  /** Hash of user id → auth key, written by the auth service. */
  authKeysKey: string;
  /** List of audit entries, appended by the audit service. */
  auditLogKey: string;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  const prefix = env.CHANNEL_PREFIX ?? learnerPrefix(env);
  return {
    redisUrl: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    channelPrefix: prefix,
    signupChannel: channelFor('user.signed-up', prefix),
    userEventsPattern: userEventsPattern(prefix),
    authKeysKey: `${prefix}auth-keys`,
    auditLogKey: `${prefix}audit-log`,
  };
}
