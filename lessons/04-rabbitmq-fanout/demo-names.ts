import { hostname, userInfo } from 'node:os';

/**
 * Who runs the demos. On a workshop's shared broker every learner's demo declares the same queues
 * and exchanges; a name of their own keeps them apart. COURSE_LEARNER if it is set, user@host
 * otherwise.
 */
export function learnerName(env: NodeJS.ProcessEnv = process.env): string {
  const chosen = env.COURSE_LEARNER?.trim();
  if (chosen) return chosen;
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    // No entry in the password database (some containers): fall back to the environment.
    user = env.USER ?? env.USERNAME ?? 'learner';
  }
  return `${user}@${hostname()}`;
}

/** A demo's queue or exchange name, with the learner's name in front: `ada@laptop.signups`. */
export function demoName(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return `${learnerName(env)}.${name}`;
}
