import express, { type ErrorRequestHandler, type Express, type Request, type Response } from 'express';
import type { Job, JobStatus } from 'bull';
import { EMAIL_QUEUE, REPORT_QUEUE } from './config.ts';
import { reportJob, welcomeEmailJob } from './jobs.ts';
import type { Queues } from './queues.ts';
import { parseReportRequest, parseSignup } from './requests.ts';
import { describeError } from './runtime.ts';

/** Where a job's status can be read: the Location of every 202 Accepted. */
export function jobLocation(id: Job['id']): string {
  return `/jobs/${encodeURIComponent(String(id))}`;
}

/** GET /jobs/:id's answer. */
export interface JobView {
  id: string;
  queue: string;
  name: string;
  state: JobStatus | 'stuck';
  progress: unknown;
  attemptsMade: number;
  result: unknown;
  failedReason: string | null;
}

export async function describeJob(queue: string, job: Job): Promise<JobView> {
  return {
    id: String(job.id),
    queue,
    name: job.name,
    state: await job.getState(),
    progress: job.progress() as unknown,
    attemptsMade: job.attemptsMade,
    result: (job.returnvalue as unknown) ?? null,
    failedReason: job.failedReason ?? null,
  };
}

export interface AppOptions {
  /** Where unexpected errors are reported (the answer itself only says "internal error"). */
  logError?: (line: string) => void;
}

/**
 * The HTTP API. It only ever queues work and reads the queues: the slow work (the email, the
 * report) happens in the worker, after the answer has gone.
 */
export function createApp(queues: Queues, { logError = console.error }: AppOptions = {}): Express {
  const app = express();
  app.use(express.json({ limit: '16kb' }));
  app.get('/health', (_req, res) => {
    res.json({ ok: true });
  });
  app.post('/signups', (req, res) => postSignup(queues, req, res));
  app.post('/reports', (req, res) => postReport(queues, req, res));
  app.get('/jobs/:id', (req, res) => getJobStatus(queues, req, res));
  app.use(answerErrors(logError));
  return app;
}

/** POST /signups: queue the welcome email and answer 202 Accepted at once. */
async function postSignup(queues: Queues, req: Request, res: Response): Promise<void> {
  const parsed = parseSignup(req.body);
  if (!parsed.ok) {
    res.status(400).json({ error: 'invalid signup', issues: parsed.issues });
    return;
  }
  const { name, data, opts } = welcomeEmailJob(parsed.value);
  const added = await queues.emails.add(name, data, opts);
  // When a job with this id still exists, bull stores nothing and add() returns a Job built from
  // our own arguments: it never says so. Ask Redis what the id really holds.
  const job = await queues.emails.getJob(added.id);
  const state = job ? await job.getState() : undefined;
  if (job && state === 'completed') {
    // The email was sent (the job is kept for a while after it completes): nothing new to do.
    res.status(200).location(jobLocation(job.id)).json({ jobId: String(job.id), state, result: job.returnvalue as unknown });
    return;
  }
  if (job && state === 'failed') {
    // A job that failed for good is kept (removeOnFail) and would swallow every later add of its id:
    // replace it with a fresh job, which gets the whole retry schedule again.
    await removeUnlessAlreadyReplaced(job);
    const fresh = await queues.emails.add(name, data, opts);
    res.status(202).location(jobLocation(fresh.id)).json({ jobId: String(fresh.id) });
    return;
  }
  res.status(202).location(jobLocation(added.id)).json({ jobId: String(added.id) });
}

async function removeUnlessAlreadyReplaced(job: Job): Promise<void> {
  try {
    await job.remove();
  } catch (error) {
    // A concurrent request replaced it first and the new job is running (locked): nothing to do.
    if ((await job.getState()) === 'failed') throw error;
  }
}

/** POST /reports: queue the report and answer 202 Accepted at once. */
async function postReport(queues: Queues, req: Request, res: Response): Promise<void> {
  const parsed = parseReportRequest(req.body);
  if (!parsed.ok) {
    res.status(400).json({ error: 'invalid report request', issues: parsed.issues });
    return;
  }
  const { name, data, opts } = reportJob(parsed.value);
  const job = await queues.reports.add(name, data, opts);
  res.status(202).location(jobLocation(job.id)).json({ jobId: String(job.id) });
}

/** GET /jobs/:id: the job's state, progress and result, from whichever queue holds it. */
async function getJobStatus(queues: Queues, req: Request, res: Response): Promise<void> {
  const id = String(req.params.id);
  for (const [queueName, queue] of [[EMAIL_QUEUE, queues.emails], [REPORT_QUEUE, queues.reports]] as const) {
    const job = await queue.getJob(id);
    if (job) {
      res.json(await describeJob(queueName, job as Job));
      return;
    }
  }
  res.status(404).json({ error: `no job "${id}"` });
}

/**
 * A body that is not JSON, or too large, is the client's mistake: express.json() raises errors with
 * a 4xx `status` whose message is safe to show. Anything else is ours: logged, and answered 500
 * without the details.
 */
function answerErrors(logError: (line: string) => void): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const status = typeof error === 'object' && error !== null && 'status' in error && typeof error.status === 'number' ? error.status : 500;
    if (status < 500) {
      res.status(status).json({ error: describeError(error) });
      return;
    }
    logError(`[server] ${req.method} ${req.path} failed: ${describeError(error)}`);
    res.status(500).json({ error: 'internal error' });
  };
}
