import { hostname, userInfo } from 'node:os';

/**
 * Names for the hand-run demos, so that learners who share one Kafka in a workshop never read each
 * other's topics or join each other's groups. Every default name gets the learner's prefix:
 * COURSE_LEARNER if it is set, `${user}@${host}` otherwise, with the characters Kafka does not
 * allow in a topic name (anything but letters, digits, `.`, `_` and `-`) replaced by `_`.
 * A name given explicitly in the environment (ORDERS_TOPIC=...) is used exactly as given.
 */
export function learnerPrefix(env: NodeJS.ProcessEnv = process.env): string {
  const learner = env.COURSE_LEARNER?.trim() || `${userName()}@${hostname()}`;
  return learner.replace(/[^A-Za-z0-9._-]+/g, '_');
}

/** `value` when it is set, otherwise `fallback` under the learner's prefix, e.g. "ana_laptop.orders". */
export function demoName(value: string | undefined, fallback: string, env: NodeJS.ProcessEnv = process.env): string {
  return value?.trim() || `${learnerPrefix(env)}.${fallback}`;
}

function userName(): string {
  try {
    return userInfo().username;
  } catch {
    // No entry in the user database (some containers): fall back to what the shell says.
    return process.env.USER ?? process.env.USERNAME ?? 'learner';
  }
}
