import { hostname, userInfo } from 'node:os';

/**
 * Who runs this lesson's processes by hand: COURSE_LEARNER, or user@host. In a workshop everyone
 * shares one Redis, so every channel, stream and group name a demo uses starts with it, and two
 * learners never read (or steal) each other's signups.
 */
export function learnerName(env: NodeJS.ProcessEnv = process.env): string {
  const name = env.COURSE_LEARNER?.trim() || `${userName()}@${hostname()}`;
  // Patterns are built from it (PSUBSCRIBE user.*), so glob characters and spaces are replaced.
  return name.replace(/[*?[\]\\\s]/g, '-');
}

/** The prefix of every name a demo uses: "ada@laptop:". */
export function learnerPrefix(env: NodeJS.ProcessEnv = process.env): string {
  return `${learnerName(env)}:`;
}

function userName(): string {
  try {
    return userInfo().username;
  } catch {
    // A container user with no entry in /etc/passwd has no name.
    return 'learner';
  }
}
