import { z } from 'zod';

/**
 * One shipping label to buy from the carrier for an order: the unit of work in both halves of the
 * lesson (a RabbitMQ job, a Kafka record keyed by its order id).
 */
export const LabelRequestSchema = z.object({
  /** Assigned once by the producer; it travels as the AMQP message id and survives every retry. */
  requestId: z.string().min(1),
  orderId: z.string().min(1),
  postcode: z.string().min(1),
  weightGrams: z.number().int().positive(),
});

export type LabelRequest = z.infer<typeof LabelRequestSchema>;

export function encodeRequest(request: LabelRequest): Buffer {
  return Buffer.from(JSON.stringify(request));
}

export type ParsedRequest = { ok: true; request: LabelRequest } | { ok: false; reason: string };

/** Reads a message body; bad input becomes a reason to record, never an exception. */
export function parseRequest(content: Buffer | null): ParsedRequest {
  if (content === null || content.length === 0) return { ok: false, reason: 'empty body' };
  let json: unknown;
  try {
    json = JSON.parse(content.toString('utf8'));
  } catch {
    return { ok: false, reason: `not JSON: ${JSON.stringify(content.toString('utf8').slice(0, 80))}` };
  }
  const parsed = LabelRequestSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`);
    return { ok: false, reason: problems.join('; ') };
  }
  return { ok: true, request: parsed.data };
}

/** The text to record for a failure, whatever was thrown. */
export function describeError(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  // A header is no place for a stack trace or a megabyte of HTML from an error page.
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}
