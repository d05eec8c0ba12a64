import { z } from 'zod';

/** The fact the signup log records. */
export interface UserSignedUp {
  userId: string;
  email: string;
  name: string;
  /** ISO-8601 timestamp. */
  signedUpAt: string;
}

/**
 * A stream entry is a flat list of field/value pairs. A signup is stored as two fields: its type,
 * and the event itself as JSON.
 */
export interface SignupEntryFields {
  type: 'user.signed-up';
  data: string;
}

export function toEntryFields(event: UserSignedUp): SignupEntryFields {
  return { type: 'user.signed-up', data: JSON.stringify(event) };
}

const UserSignedUpSchema: z.ZodType<UserSignedUp> = z.object({
  userId: z.string().min(1),
  email: z.string().min(3),
  name: z.string(),
  signedUpAt: z.iso.datetime(),
});

/** An entry no retry can fix: report it and dead-letter it, never crash or retry forever. */
export class MalformedEntryError extends Error {
  override name = 'MalformedEntryError';
}

/**
 * Reads a signup from an entry's fields, or throws a MalformedEntryError saying what is wrong.
 * `null` fields mean the entry is still pending but was trimmed from the stream: its data is gone.
 */
export function parseSignupEntry(fields: Record<string, string> | null): UserSignedUp {
  if (fields === null) throw new MalformedEntryError('malformed entry: it was trimmed from the stream before it was handled');
  if (fields.type !== 'user.signed-up') {
    throw new MalformedEntryError(`malformed entry: type is ${JSON.stringify(fields.type ?? null)}, expected "user.signed-up"`);
  }
  if (fields.data === undefined) throw new MalformedEntryError('malformed entry: it has no data field');
  let json: unknown;
  try {
    json = JSON.parse(fields.data);
  } catch {
    throw new MalformedEntryError(`malformed entry: data is not JSON: ${preview(fields.data)}`);
  }
  const parsed = UserSignedUpSchema.safeParse(json);
  if (!parsed.success) {
    throw new MalformedEntryError(`malformed entry: data is not a signup (${z.prettifyError(parsed.error)})`);
  }
  return parsed.data;
}

function preview(raw: string): string {
  return raw.length > 120 ? `${JSON.stringify(raw.slice(0, 120))}…` : JSON.stringify(raw);
}
