import type { Redis } from 'ioredis';
import { toEntryFields, type UserSignedUp } from './events.ts';

export interface AppendOptions {
  /** Keep about this many entries: older ones are trimmed as new ones arrive. */
  maxLength: number;
}

/** Appends one signup to the stream and resolves with the entry ID Redis assigned. */
export async function appendSignup(redis: Redis, stream: string, event: UserSignedUp, options: AppendOptions): Promise<string> {
  const { type, data } = toEntryFields(event);
  // TODO: XADD the two fields (type and data) to `stream` with an auto-generated ID ('*'), capping
  // the stream at about options.maxLength entries, and resolve with the new entry's ID.
  throw new Error('TODO: appendSignup');
}
