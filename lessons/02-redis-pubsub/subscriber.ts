import type { Redis } from 'ioredis';
import { parseSignedUp, parseUserEvent, type UserEvent, type UserSignedUp } from './events.ts';

/** Receives every error: a malformed message, a handler that throws or rejects, a connection problem. */
export type ErrorReporter = (error: unknown, context: { channel: string }) => void;

export interface SubscribeOptions {
  onError?: ErrorReporter;
}

export interface Subscription {
  /** Unsubscribes and closes the subscription's connection (not the one passed in). */
  close(): Promise<void>;
}

export type SignupHandler = (event: UserSignedUp) => void | Promise<void>;
export type UserEventHandler = (event: UserEvent, channel: string) => void | Promise<void>;

/**
 * Calls `handler` for every user.signed-up event published on `channel`.
 *
 * Resolves once Redis has confirmed the subscription: from then on, nothing published on the
 * channel is missed while this process is up. `redis` stays usable for ordinary commands.
 */
export async function subscribeToSignups(
  redis: Redis,
  channel: string,
  handler: SignupHandler,
  options: SubscribeOptions = {},
): Promise<Subscription> {
  const report = options.onError ?? logError;
  // TODO:
  // 1. Give the subscription a connection of its own. The service keeps using `redis` for HSET,
  //    RPUSH, PUBLISH…, and a connection that has subscribed accepts no such commands any more.
  // 2. On each 'message' for `channel`: parse it with parseSignedUp (events.ts) and call the handler.
  //    A malformed message and a handler that throws or rejects are reported with
  //    report(error, { channel }); none of them may stop the subscription or crash the process.
  // 3. Subscribe, and resolve only once Redis has confirmed it.
  // 4. Return { close }: close quits the subscription's connection, not `redis`.
  throw new Error('TODO: subscribeToSignups');
}

/**
 * Calls `handler` for every user event published on a channel matching `pattern` (PSUBSCRIBE),
 * with the channel it arrived on. Resolves once Redis has confirmed the subscription.
 */
export async function subscribeToUserEvents(
  redis: Redis,
  pattern: string,
  handler: UserEventHandler,
  options: SubscribeOptions = {},
): Promise<Subscription> {
  const report = options.onError ?? logError;
  // TODO: like subscribeToSignups, with PSUBSCRIBE and the 'pmessage' event, which receives
  // (pattern, channel, message). Parse with parseUserEvent and pass the channel to the handler.
  throw new Error('TODO: subscribeToUserEvents');
}

function logError(error: unknown, { channel }: { channel: string }): void {
  console.error(`[subscriber] a message on ${channel} could not be handled:`, error);
}
