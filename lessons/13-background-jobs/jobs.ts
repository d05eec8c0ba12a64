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
  // TODO: name WELCOME_EMAIL, the signup as data, and a job id made of the user id alone, with a
  // prefix so it can never look like one of bull's own numeric ids (use "-", not ":", which BullMQ
  // forbids in custom ids).
  throw new Error('TODO: welcomeEmailJob');
}

/**
 * A monthly report: paying accounts first, and not before `notBefore` when it is given. No job id:
 * two requests are two reports, and bull makes the id (a UUID, plus ":<accountId>" because the
 * report queue limits per account).
 */
export function reportJob(request: ReportRequest, now: number = Date.now()): JobSpec<ReportRequest> {
  // TODO: name MONTHLY_REPORT, the request as data, and options:
  // - priority: pro reports before free ones (in bull, 1 is the highest priority);
  // - delay, when request.notBefore is given and still ahead of `now`.
  throw new Error('TODO: reportJob');
}
