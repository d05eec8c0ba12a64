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
  // A connection in subscriber mode accepts only (P)SUBSCRIBE, (P)UNSUBSCRIBE, PING and QUIT, so the
  // subscription gets a connection of its own and the caller's stays free to publish and write.
  const subscriber = redis.duplicate();
  subscriber.on('error', (error: unknown) => report(error, { channel }));
  subscriber.on('message', (from: string, message: string) => {
    if (from !== channel) return;
    void deliver(from, report, async () => handler(parseSignedUp(message)));
  });
  await subscriber.subscribe(channel);
  return { close: () => closeConnection(subscriber) };
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
  const subscriber = redis.duplicate();
  subscriber.on('error', (error: unknown) => report(error, { channel: pattern }));
  subscriber.on('pmessage', (matched: string, channel: string, message: string) => {
    if (matched !== pattern) return;
    void deliver(channel, report, async () => handler(parseUserEvent(message), channel));
  });
  await subscriber.psubscribe(pattern);
  return { close: () => closeConnection(subscriber) };
}

/** Runs one delivery so that neither a bad message nor a failing handler escapes: both are reported. */
async function deliver(channel: string, report: ErrorReporter, handle: () => Promise<void>): Promise<void> {
  try {
    await handle();
  } catch (error) {
    report(error, { channel });
  }
}

async function closeConnection(subscriber: Redis): Promise<void> {
  try {
    await subscriber.quit();
  } catch {
    subscriber.disconnect();
  }
}

function logError(error: unknown, { channel }: { channel: string }): void {
  console.error(`[subscriber] a message on ${channel} could not be handled:`, error);
}
