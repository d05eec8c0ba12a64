import { z } from 'zod';

/** The fact the user service announces after a signup, as in lessons 01 and 02. */
export const UserSignedUpSchema = z.object({
  userId: z.string().min(1),
  email: z.email(),
  name: z.string().min(1),
  /** ISO-8601 timestamp. */
  signedUpAt: z.iso.datetime(),
});

export type UserSignedUp = z.infer<typeof UserSignedUpSchema>;

/** The event type, carried in each message's `type` property. */
export const USER_SIGNED_UP = 'user.signed-up';

export function encodeSignup(event: UserSignedUp): Buffer {
  return Buffer.from(JSON.stringify(event));
}

export type ParsedSignup = { ok: true; event: UserSignedUp } | { ok: false; reason: string };

/** Reads a message body; bad input becomes a reason to log, never an exception. */
export function parseSignup(content: Buffer): ParsedSignup {
  let json: unknown;
  try {
    json = JSON.parse(content.toString('utf8'));
  } catch {
    return { ok: false, reason: `not JSON: ${JSON.stringify(content.toString('utf8').slice(0, 80))}` };
  }
  const parsed = UserSignedUpSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`);
    return { ok: false, reason: problems.join('; ') };
  }
  return { ok: true, event: parsed.data };
}
