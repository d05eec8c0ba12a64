import { z } from 'zod';

/** The facts the user service announces. Names are past tense: something that already happened. */
export interface UserSignedUp {
  type: 'user.signed-up';
  userId: string;
  email: string;
  name: string;
  /** ISO-8601 timestamp. */
  signedUpAt: string;
}

export interface UserEmailVerified {
  type: 'user.email-verified';
  userId: string;
  verifiedAt: string;
}

export interface UserDeleted {
  type: 'user.deleted';
  userId: string;
  deletedAt: string;
}

export type UserEvent = UserSignedUp | UserEmailVerified | UserDeleted;
export type UserEventType = UserEvent['type'];

const timestamp = z.iso.datetime();

// z.object (not strictObject): a subscriber tolerates fields it does not know yet, so a publisher can
// add one without breaking every service that listens.
const UserEventSchema: z.ZodType<UserEvent> = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('user.signed-up'),
    userId: z.string().min(1),
    email: z.string().min(3),
    name: z.string(),
    signedUpAt: timestamp,
  }),
  z.object({ type: z.literal('user.email-verified'), userId: z.string().min(1), verifiedAt: timestamp }),
  z.object({ type: z.literal('user.deleted'), userId: z.string().min(1), deletedAt: timestamp }),
]);

/** A message that is not a user event this code understands. Report it and move on; never crash. */
export class MalformedMessageError extends Error {
  override name = 'MalformedMessageError';
}

/** Parses one message as received from Redis, or throws a MalformedMessageError saying why not. */
export function parseUserEvent(raw: string): UserEvent {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new MalformedMessageError(`message is not JSON: ${preview(raw)}`);
  }
  const parsed = UserEventSchema.safeParse(json);
  if (!parsed.success) {
    throw new MalformedMessageError(`message is not a user event (${z.prettifyError(parsed.error)}): ${preview(raw)}`);
  }
  return parsed.data;
}

/** Like parseUserEvent, for the signup channel: any other event type there is a mistake. */
export function parseSignedUp(raw: string): UserSignedUp {
  const event = parseUserEvent(raw);
  if (event.type !== 'user.signed-up') {
    throw new MalformedMessageError(`expected a user.signed-up event, got ${event.type}`);
  }
  return event;
}

function preview(raw: string): string {
  return raw.length > 120 ? `${JSON.stringify(raw.slice(0, 120))}…` : JSON.stringify(raw);
}
