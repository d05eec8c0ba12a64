import type { JobOptions } from 'bull';
import type { ReportRequest, Signup } from './requests.ts';

/** Job names: the worker registers one processor per name. */
export const WELCOME_EMAIL = 'welcome-email';
export const MONTHLY_REPORT = 'monthly-report';

/** Everything queue.add(name, data, opts) needs; the queue adds its default options to `opts`. */
export interface JobSpec<T> {
  name: string;
  data: T;
  opts: JobOptions;
}

/**
 * One welcome email per user: the job id is made of the user id, so a signup that is submitted
 * twice (a double click, a client that retries) adds no second job while the first one exists.
 */
export function welcomeEmailJob(signup: Signup): JobSpec<Signup> {
  // A prefix keeps it from ever looking like one of bull's own numeric ids ("42"); "-" rather than
  // ":", which BullMQ forbids in custom ids.
  return { name: WELCOME_EMAIL, data: signup, opts: { jobId: `welcome-email-${signup.userId}` } };
}

/** bull's priority: 1 is the highest; a lower number is taken first. */
const PRIORITY: Record<ReportRequest['plan'], number> = { pro: 1, free: 10 };

/**
 * A monthly report: paying accounts first, and not before `notBefore` when it is given. No job id:
 * two requests are two reports, and bull makes the id (a UUID, plus ":<accountId>" because the
 * report queue limits per account).
 */
export function reportJob(request: ReportRequest, now: number = Date.now()): JobSpec<ReportRequest> {
  const opts: JobOptions = { priority: PRIORITY[request.plan] };
  if (request.notBefore !== undefined) {
    // bull's delay is a duration from now, not a moment; a moment in the past means "at once".
    const wait = Date.parse(request.notBefore) - now;
    if (wait > 0) opts.delay = wait;
  }
  return { name: MONTHLY_REPORT, data: request, opts };
}
