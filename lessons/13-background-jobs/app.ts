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
  // TODO:
  // 1. parseSignup(req.body); when it is not ok, answer 400 with { error, issues }.
  // 2. Add welcomeEmailJob(...) to queues.emails, and answer 202 with { jobId } and a Location
  //    (jobLocation) without waiting for the job.
  // 3. add() never tells you that a job with that id already existed: it returns a Job made of your
  //    own arguments and stores nothing. Read what Redis holds (queues.emails.getJob, getState):
  //    - completed: the email was sent; answer 200 with { jobId, state, result } instead;
  //    - failed: it would block the id for good; remove it and add the job again, then 202.
  throw new Error('TODO: postSignup');
}

/** POST /reports: queue the report and answer 202 Accepted at once. */
async function postReport(queues: Queues, req: Request, res: Response): Promise<void> {
  // TODO: parseReportRequest(req.body) (400 when not ok), add reportJob(...) to queues.reports,
  // answer 202 with { jobId } and a Location.
  throw new Error('TODO: postReport');
}

/** GET /jobs/:id: the job's state, progress and result, from whichever queue holds it. */
async function getJobStatus(queues: Queues, req: Request, res: Response): Promise<void> {
  // TODO: look req.params.id up in queues.emails, then queues.reports (getJob resolves with null
  // when the queue has no such job); answer describeJob(queueName, job), or 404 with { error }.
  throw new Error('TODO: getJobStatus');
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
