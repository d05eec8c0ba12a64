import type { Redis } from 'ioredis';
import { toEntryFields, type UserSignedUp } from './events.ts';

export interface AppendOptions {
  /** Keep about this many entries: older ones are trimmed as new ones arrive. */
  maxLength: number;
}

/** Appends one signup to the stream and resolves with the entry ID Redis assigned. */
export async function appendSignup(redis: Redis, stream: string, event: UserSignedUp, options: AppendOptions): Promise<string> {
  const { type, data } = toEntryFields(event);
  // MAXLEN ~ lets Redis trim whole internal nodes only: much cheaper than an exact cap, and the
  // stream still keeps at least maxLength entries.
  const id = await redis.xadd(stream, 'MAXLEN', '~', options.maxLength, '*', 'type', type, 'data', data);
  if (id === null) throw new Error(`XADD to ${stream} returned no ID`);
  return id;
}
