import type { UserEventType } from './events.ts';

/**
 * Each event type travels on its own channel, named after it: "user.signed-up". A prefix keeps
 * environments apart on one Redis ("staging:user.signed-up"); it must not contain the glob
 * characters * ? [ ] because patterns are built from it.
 */
export function channelFor(type: UserEventType, prefix = ''): string {
  return `${prefix}${type}`;
}

/** The PSUBSCRIBE pattern for every user event: "user.*" matches user.signed-up, user.deleted, … */
export function userEventsPattern(prefix = ''): string {
  return `${prefix}user.*`;
}
