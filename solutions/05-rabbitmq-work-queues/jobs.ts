import { z } from 'zod';

/** A file a user uploaded that needs a thumbnail: one job, handled by one worker. */
export const UploadJobSchema = z.object({
  jobId: z.string().min(1),
  fileName: z.string().min(1),
  sizeBytes: z.number().int().nonnegative(),
  uploadedBy: z.string().min(1),
  /** ISO-8601 timestamp. */
  uploadedAt: z.iso.datetime(),
});

export type UploadJob = z.infer<typeof UploadJobSchema>;

export function encodeJob(job: UploadJob): Buffer {
  return Buffer.from(JSON.stringify(job));
}

export type ParsedJob = { ok: true; job: UploadJob } | { ok: false; reason: string };

/** Reads a message body; bad input becomes a reason to log, never an exception. */
export function parseJob(content: Buffer): ParsedJob {
  let json: unknown;
  try {
    json = JSON.parse(content.toString('utf8'));
  } catch {
    return { ok: false, reason: `not JSON: ${JSON.stringify(content.toString('utf8').slice(0, 80))}` };
  }
  const parsed = UploadJobSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`);
    return { ok: false, reason: problems.join('; ') };
  }
  return { ok: true, job: parsed.data };
}
