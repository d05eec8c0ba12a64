import Queue from 'bull';
import type pg from 'pg';
import type { AnyEnvelope } from '../../platform/events.ts';
import { log } from '../../platform/log.ts';

/**
 * Emails as bull jobs: the event handler only enqueues (fast, so the broker's message is
 * acknowledged quickly), and a worker sends, with retries and backoff. The job id is derived from
 * the event id, so an event delivered twice enqueues one job (bull ignores an id it already has).
 */

export type EmailKind = 'welcome' | 'order-confirmed';

export interface EmailJob {
  kind: EmailKind;
  userId: string;
  requestId: string | undefined;
  orderId?: string;
  totalCents?: number;
}

export type EmailQueue = Queue.Queue<EmailJob>;

export function createEmailQueue(redisUrl: string, prefix: string): EmailQueue {
  return new Queue<EmailJob>('emails', redisUrl, {
    prefix,
    defaultJobOptions: { attempts: 5, backoff: { type: 'exponential', delay: 100 }, removeOnComplete: 1000, removeOnFail: 1000 },
  });
}

/** What the service does with each event it consumes. */
export async function onEvent(pool: pg.Pool, queue: EmailQueue, event: AnyEnvelope): Promise<void> {
  if (event.type === 'UserRegistered') {
    const { userId, email, name } = event.data;
    await pool.query(
      `INSERT INTO contacts (user_id, email, name) VALUES ($1, $2, $3)
       ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, name = excluded.name`,
      [userId, email, name],
    );
    await queue.add({ kind: 'welcome', userId, requestId: event.requestId }, { jobId: `welcome:${event.eventId}` });
  } else if (event.type === 'OrderConfirmed') {
    const { userId, orderId, totalCents } = event.data;
    await queue.add({ kind: 'order-confirmed', userId, orderId, totalCents, requestId: event.requestId }, { jobId: `order-confirmed:${event.eventId}` });
  }
}

/** Sends one email: here, the course's mail transport is the sent_emails table. */
export async function sendEmail(pool: pg.Pool, jobId: string, job: EmailJob): Promise<void> {
  const { rows } = await pool.query<{ email: string; name: string }>('SELECT email, name FROM contacts WHERE user_id = $1', [job.userId]);
  const contact = rows[0];
  // The contact arrives with UserRegistered; until then, fail and let bull retry with backoff.
  if (!contact) throw new Error(`no contact details for user ${job.userId} yet`);
  const { subject, body } =
    job.kind === 'welcome'
      ? { subject: 'Welcome to the shop', body: `Hello ${contact.name}, your account is ready.` }
      : { subject: `Order ${job.orderId} confirmed`, body: `Hello ${contact.name}, we received your payment of ${formatCents(job.totalCents ?? 0)}.` };
  const { rowCount } = await pool.query(
    `INSERT INTO sent_emails (job_id, kind, user_id, to_address, subject, body) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (job_id) DO NOTHING`,
    [jobId, job.kind, job.userId, contact.email, subject, body],
  );
  if (rowCount) log('notifications', job.requestId, `sent ${job.kind} email to ${contact.email} (job ${jobId})`);
}

function formatCents(cents: number): string {
  return `${(cents / 100).toFixed(2)} EUR`;
}
