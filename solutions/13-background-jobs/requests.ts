import { z } from 'zod';

/**
 * Ids go into job ids and Redis keys, so they are kept to characters that mean nothing there. A ":"
 * in an account id would break the per-account rate limit: bull takes the group from the text after
 * the last ":" of a job id.
 */
const Id = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'use 1 to 64 letters, digits, "-" or "_"');

/** POST /signups: a user who just signed up and is owed a welcome email. */
export const SignupSchema = z.object({
  userId: Id,
  email: z.email(),
  name: z.string().trim().min(1).max(100),
});

export type Signup = z.infer<typeof SignupSchema>;

export const PLANS = ['free', 'pro'] as const;
export type Plan = (typeof PLANS)[number];

/** POST /reports: a monthly usage report for an account, built in the background. */
export const ReportRequestSchema = z.object({
  accountId: Id,
  plan: z.enum(PLANS),
  /** The month the report covers, "2025-01". */
  month: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'use YYYY-MM'),
  /** Optional, ISO-8601: do not start the report before this moment (after the nightly import, say). */
  notBefore: z.iso.datetime({ offset: true }).optional(),
});

export type ReportRequest = z.infer<typeof ReportRequestSchema>;

export type Parsed<T> = { ok: true; value: T } | { ok: false; issues: string[] };

export function parseSignup(body: unknown): Parsed<Signup> {
  return parse(SignupSchema, body);
}

export function parseReportRequest(body: unknown): Parsed<ReportRequest> {
  return parse(ReportRequestSchema, body);
}

/** Bad input becomes a list of "field: problem" lines for a 400 answer, never an exception. */
function parse<T>(schema: z.ZodType<T>, body: unknown): Parsed<T> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, issues: parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`) };
}
