import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import Queue from 'bull';
import { Redis } from 'ioredis';
import { afterAll } from 'vitest';
import { locationInGradedCode, todoMessage } from '../tooling/course/todo.ts';
import { describe, expect, test as checkTest, vi } from './support/fixtures.ts';
import { gradedFolder } from './support/lesson.ts';
import { scanKeys, type RedisTestKit } from './support/redis.ts';
import { serviceEnv, serviceUrl } from './support/services.ts';
import { createApp } from '@lesson/13-background-jobs/app.ts';
import { EMAIL_QUEUE, REPORT_QUEUE, type QueueConfig } from '@lesson/13-background-jobs/config.ts';
import { MONTHLY_REPORT, welcomeEmailJob } from '@lesson/13-background-jobs/jobs.ts';
import type { Mailer } from '@lesson/13-background-jobs/mailer.ts';
import { startProcessing, type Concurrency } from '@lesson/13-background-jobs/processors.ts';
import { createQueues, type Queues } from '@lesson/13-background-jobs/queues.ts';
import type { ReportBuilder } from '@lesson/13-background-jobs/report-builder.ts';
import type { ReportRequest, Signup } from '@lesson/13-background-jobs/requests.ts';

const SLUG = '13-background-jobs';
const WHERE = gradedFolder(SLUG);

/**
 * The file each TODO of the starter is in, for a TODO the check sees only by its message (in a log
 * line or a response, often without a stack); for any other TODO, the stack printed after it.
 */
const TODO_FILES: Record<string, string> = {
  cappedExponentialBackoff: 'queues.ts',
  createQueues: 'queues.ts',
  reportJob: 'jobs.ts',
  welcomeEmailJob: 'jobs.ts',
  getJobStatus: 'app.ts',
  postReport: 'app.ts',
  postSignup: 'app.ts',
  reportProcessor: 'processors.ts',
  startProcessing: 'processors.ts',
  welcomeEmailProcessor: 'processors.ts',
};

/** "TODO: name (where it is)", as the runner reports an unwritten TODO. */
function todoError(name: string, text: string): Error {
  const file = TODO_FILES[name];
  return new Error(todoMessage(name, file ? `${WHERE}/${file}` : locationInGradedCode(text)));
}
/** Work that takes milliseconds on an idle machine: generous, since checks share two busy cores. */
const DEADLINE = { timeout: 15_000, interval: 20 };
const FINISHED = ['completed', 'failed'];

// ---------------------------------------------------------------------------------------------
// The check's own tools: gates it opens when it chooses, a mail provider and a report builder that
// record what they were asked to do, queues of its own to read Redis with, and the lesson's HTTP app
// served on a free port. Everything a test opens is closed before its Redis keys are deleted.
// ---------------------------------------------------------------------------------------------

/** Work held in progress until the check opens the gate: never a fixed sleep. */
class Gate {
  private release!: () => void;
  readonly opened = new Promise<void>((resolve) => (this.release = resolve));
  open(): void {
    this.release();
  }
}

interface Call {
  to: string;
  at: number;
}

/** A mail provider that records every call; it fails for `failFor`, by throwing or by rejecting. */
function checkMailer({ failFor = [], failWith = 'throw', replyMs = 2, hold }: {
  failFor?: string[];
  failWith?: 'throw' | 'reject';
  replyMs?: number;
  /** The provider accepts the message at once and answers only when this settles. */
  hold?: Promise<void>;
} = {}) {
  const calls: Call[] = [];
  const sent: Call[] = [];
  let counter = 0;
  const mailer: Mailer = {
    send(message) {
      calls.push({ to: message.to, at: Date.now() });
      if (failFor.includes(message.to)) {
        // Thrown before any promise exists, or a promise that rejects later: both are failures.
        if (failWith === 'throw') throw new Error(`the mail provider is down (thrown for ${message.to})`);
        return sleep(3).then(() => Promise.reject(new Error(`the mail provider is down (rejected for ${message.to})`)));
      }
      sent.push({ to: message.to, at: Date.now() });
      counter += 1;
      const messageId = `check-message-${counter}`;
      return (hold ?? Promise.resolve()).then(() => sleep(replyMs)).then(() => ({ messageId }));
    },
  };
  return {
    mailer,
    calls: (to: string) => calls.filter((c) => c.to === to),
    sent: (to: string) => sent.filter((c) => c.to === to),
  };
}

/** A report builder that takes `workMs` (after `hold`, if given) and records each start and how many run at once. */
function checkBuilder(workMs: number, hold?: Promise<void>) {
  const starts: Array<{ accountId: string; month: string; at: number }> = [];
  let running = 0;
  let mostAtOnce = 0;
  const build: ReportBuilder = async (request, onProgress) => {
    starts.push({ accountId: request.accountId, month: request.month, at: Date.now() });
    running += 1;
    mostAtOnce = Math.max(mostAtOnce, running);
    try {
      await hold;
      await sleep(workMs);
      await onProgress(100);
      return { url: `check/${request.accountId}/${request.month}.pdf`, rows: request.month.length };
    } finally {
      running -= 1;
    }
  };
  return { build, starts, running: () => running, mostAtOnce: () => mostAtOnce };
}

const noMail: Mailer = { send: () => Promise.reject(new Error('this check sends no email')) };
const noReports: ReportBuilder = () => Promise.reject(new Error('this check builds no report'));

/** Every prefix a test used: after the run, nothing may be left under any of them. */
const usedPrefixes = new Set<string>();

class JobsKit {
  private readonly queues: Queue.Queue[] = [];
  private readonly gates: Gate[] = [];
  private readonly servers: Server[] = [];
  private readonly readers = new Map<string, Queue.Queue>();
  /** What the lesson's app logged as unexpected errors (its 500s). */
  readonly appErrors: string[] = [];

  /**
   * The test's own key prefix. Not the redis fixture's: that fixture deletes "<its prefix>*", and
   * "check-…-1*" also matches "check-…-12:…", the keys of a test still running. Everything the lesson
   * writes sits under "<prefix>:", and "<prefix>:*" matches this test's keys alone.
   */
  readonly prefix: string;

  constructor(private readonly redis: RedisTestKit, prefix: string) {
    this.prefix = prefix;
    usedPrefixes.add(prefix);
    redis.deleteAfterTest(`${prefix}:*`);
  }

  /** The lesson's queue configuration for this test: its own prefix, fast unless told otherwise. */
  config(overrides: Partial<QueueConfig> = {}): QueueConfig {
    return {
      redisUrl: serviceUrl('redis'),
      prefix: this.prefix,
      stall: { lockDurationMs: 30_000, stalledIntervalMs: 30_000, maxStalledCount: 1 },
      emailRetry: { attempts: 3, backoffDelayMs: 10, maxBackoffMs: 1_000 },
      reportRateLimit: { max: 1_000, durationMs: 1_000 },
      ...overrides,
    };
  }

  /** The lesson's createQueues (queues.ts), closed after the test. */
  lessonQueues(config: QueueConfig): Queues {
    const queues = createQueues(config);
    this.queues.push(queues.emails, queues.reports);
    return queues;
  }

  /**
   * Queues made by the check with the options the API relies on (a per-account limiter on reports,
   * one attempt per email), so requirements about app.ts do not depend on queues.ts.
   */
  checkQueues(): Queues {
    const url = serviceUrl('redis');
    const emails = new Queue<Signup>(EMAIL_QUEUE, url, { prefix: this.prefix, defaultJobOptions: { attempts: 1 } });
    const reports = new Queue<ReportRequest>(REPORT_QUEUE, url, {
      prefix: this.prefix,
      limiter: { max: 1_000, duration: 1_000, groupKey: 'accountId' },
    });
    this.queues.push(emails, reports);
    return { emails, reports };
  }

  /** A queue of the check's own on the same Redis keys, to read what bull really stored. */
  reader(name: string): Queue.Queue {
    let queue = this.readers.get(name);
    if (!queue) {
      queue = new Queue(name, serviceUrl('redis'), { prefix: this.prefix });
      this.readers.set(name, queue);
      this.queues.push(queue);
    }
    return queue;
  }

  /** The state bull has for a job, read from Redis: undefined when there is no such job. */
  async state(queue: string, id: string): Promise<string | undefined> {
    const job = await this.reader(queue).getJob(id);
    return job ? job.getState() : undefined;
  }

  async job(queue: string, id: string): Promise<Queue.Job | null> {
    return this.reader(queue).getJob(id);
  }

  /** Bull's keys for a queue: "<prefix>:<queue>:<suffix>". */
  key(queue: string, suffix: string): string {
    return `${this.prefix}:${queue}:${suffix}`;
  }

  /**
   * The moments bull's retries are due, as it announces them: moving a failed job to the delayed set
   * publishes the due time (in ms) on "<prefix>:<queue>:delayed". Distinct values, in order.
   */
  async retriesDue(queue: string): Promise<number[]> {
    const subscriber = this.redis.connect();
    const due: number[] = [];
    subscriber.on('message', (_channel: string, message: string) => {
      const at = Math.floor(Number(message));
      if (Number.isFinite(at) && !due.includes(at)) due.push(at);
    });
    await subscriber.subscribe(this.key(queue, 'delayed'));
    return due;
  }

  gate(): Gate {
    const gate = new Gate();
    this.gates.push(gate);
    return gate;
  }

  /** The check's own worker on a queue: runs every job, whatever its name, with `handle`. */
  work<T>(queue: Queue.Queue<T>, concurrency: number, handle: (job: Queue.Job<T>) => Promise<unknown>): void {
    queue.process('*', concurrency, async (job: Queue.Job<T>) => {
      await handle(job);
    }).catch(() => {});
  }

  /** The check's own worker, keeping what `handle` returns as the job's result. */
  workWithResult<T>(queue: Queue.Queue<T>, concurrency: number, handle: (job: Queue.Job<T>) => Promise<unknown>): void {
    const processor = handle as unknown as Queue.ProcessPromiseFunction<T>;
    queue.process('*', concurrency, processor).catch(() => {});
  }

  /** The lesson's startProcessing (processors.ts), with the check's mail provider and report builder. */
  async startLessonWorker(queues: Queues, deps: { mailer?: Mailer; buildReport?: ReportBuilder }, concurrency: Concurrency): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('startProcessing did not resolve within 5 s. queue.process() returns a promise that ' +
        'settles only when the queue closes: start it, watch it with .catch(), and do not await it ' +
        `(${WHERE}/processors.ts)`)), 5_000);
    });
    try {
      await Promise.race([
        startProcessing(queues, {
          redis: this.redis.connect(),
          mailer: deps.mailer ?? noMail,
          buildReport: deps.buildReport ?? noReports,
          keyPrefix: this.prefix,
        }, concurrency),
        hang,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Serves the lesson's createApp (app.ts) on a free port; returns its base URL. */
  async serve(queues: Queues): Promise<string> {
    const server = createServer(createApp(queues, { logError: (line) => this.appErrors.push(line) }));
    this.servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const gate of this.gates) gate.open();
    for (const server of this.servers.splice(0)) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await Promise.all(this.queues.splice(0).map(closeQueue));
  }
}

/**
 * Closes a queue without leaving an error behind. A worker queue names its blocking connection from
 * a promise bull never handles, which rejects if that connection is closed before it is ready: wait
 * until every connection the queue opened is ready. And a queue waits for the jobs it is running; a
 * job that never ends must not hold it up.
 */
async function closeQueue(queue: Queue.Queue): Promise<void> {
  const clients = (queue as unknown as { clients: Redis[] }).clients;
  await Promise.race([
    Promise.all(clients.map((client) => (client.status === 'ready' ? Promise.resolve() : once(client, 'ready')))),
    sleep(3_000),
  ]).catch(() => {});
  await Promise.race([queue.close(), sleep(3_000).then(() => queue.close(true))]).catch(() => {});
}

const test = checkTest.extend<{ jobs: JobsKit }>({
  jobs: async ({ redis, unique }, use) => {
    const kit = new JobsKit(redis, unique('jobs'));
    await use(kit);
    await kit.close();
  },
});

afterAll(async () => {
  // The redis fixture deleted every key under each test's prefix; prove from Redis's side that nothing
  // wrote one again afterwards (a queue or timer still running after its check), then tidy up anyway.
  const admin = new Redis(serviceUrl('redis'), { maxRetriesPerRequest: 3 });
  admin.on('error', () => {});
  try {
    const left: string[] = [];
    for (const prefix of usedPrefixes) left.push(...(await scanKeys(admin, `${prefix}:*`)));
    if (left.length > 0) {
      await admin.del(...left);
      throw new Error(`${left.length} key(s) were left in Redis after the checks, e.g. ${left.slice(0, 4).join(', ')}: a queue ` +
        'or connection went on writing after its check had ended (one the checks could not close), or Redis was ' +
        'restarted during the run');
    }
  } finally {
    admin.disconnect();
  }
});

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

interface Answer {
  status: number;
  location: string | null;
  body: Record<string, unknown>;
  ms: number;
  /** For a 5xx: the last error the service logged, which its answer does not show. */
  logged?: string;
}

/**
 * Sends a request and reads the JSON answer. A 500 caused by an unwritten TODO becomes that TODO, so
 * the runner can say so; no answer within `timeoutMs` is a failure with `slow` as its message.
 */
async function request(
  url: string,
  init: { method?: string; body?: unknown; raw?: string },
  { timeoutMs = 5_000, slow, logs }: { timeoutMs?: number; slow?: string; logs: () => string },
): Promise<Answer> {
  const started = Date.now();
  let response: Response;
  try {
    response = await fetch(url, {
      method: init.method ?? 'GET',
      headers: init.body !== undefined || init.raw !== undefined ? { 'content-type': 'application/json' } : {},
      body: init.raw ?? (init.body === undefined ? undefined : JSON.stringify(init.body)),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    if (error instanceof Error && error.name === 'TimeoutError') {
      throw new Error(slow ?? `${init.method ?? 'GET'} ${new URL(url).pathname} did not answer within ${timeoutMs / 1000} s (${WHERE}/app.ts)`, { cause: error });
    }
    throw error;
  }
  const text = await response.text();
  const todo = /\bTODO: ([\w.]+)/.exec(logs());
  if (response.status >= 500 && todo) throw todoError(todo[1]!, logs().slice(todo.index));
  let body: Record<string, unknown>;
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = { notJson: text.slice(0, 200) };
  }
  const logged = response.status >= 500 ? logs().trim().split('\n').filter((line) => /fail|error/i.test(line)).at(-1) : undefined;
  return { status: response.status, location: response.headers.get('location'), body, ms: Date.now() - started, logged };
}

/** A condition with its teaching message alone: "expected false to be true" would teach nothing. */
function ensure(condition: boolean, message: string): void {
  if (!condition) expect.fail(message);
}

function show(answer: Answer): string {
  return `${answer.status} ${JSON.stringify(answer.body)}${answer.logged ? ` (the app logged: ${answer.logged.trim()})` : ''}`;
}

/** The Location of a 202 must lead to the job: /jobs/<id>, the id URL-encoded (or a full URL ending so). */
function expectLocation(answer: Answer, jobId: string, path: string): void {
  const expected = `/jobs/${encodeURIComponent(jobId)}`;
  const location = answer.location ?? '';
  ensure(location === expected || location.endsWith(expected), `${path} answered with Location ${JSON.stringify(answer.location)}; ` +
    `it should point where the job's status can be read: "${expected}" (res.location(jobLocation(job.id)) in ${WHERE}/app.ts)`);
}

function jobIdOf(answer: Answer, path: string): string {
  const jobId = answer.body.jobId;
  ensure(typeof jobId === 'string' && jobId.length > 0, `${path} answered ${show(answer)}: the body should be { jobId } with ` +
    `the id of the job it added, as a string (${WHERE}/app.ts)`);
  return jobId as string;
}

// ---------------------------------------------------------------------------------------------
// Test data
// ---------------------------------------------------------------------------------------------

let serial = 0;

function newSignup(name = 'Ada'): Signup {
  serial += 1;
  const userId = `user-${serial}-${Math.random().toString(36).slice(2, 8)}`;
  return { userId, email: `${name.toLowerCase()}.${userId}@example.com`, name };
}

function newReport(overrides: Partial<ReportRequest> = {}): ReportRequest {
  serial += 1;
  return { accountId: `acct-${serial}`, plan: 'free', month: '2025-01', ...overrides };
}

function gapsOf(times: number[]): number[] {
  return times.slice(1).map((at, i) => at - times[i]!);
}

describe.concurrent('13 background-jobs', () => {
  // Longest first: vitest runs five at a time, and the short ones fill in around these.
  test('a worker process killed after the email left has its job detected as stalled and run again once, and the user gets one welcome email', async ({ jobs, procs, redis }) => {
    const stall = { lockDurationMs: 500, stalledIntervalMs: 100, maxStalledCount: 1 };
    const queues = jobs.lessonQueues(jobs.config({ stall }));
    const ada = newSignup('Ada');
    const spec = welcomeEmailJob(ada);
    const jobId = String((await queues.emails.add(spec.name, spec.data, spec.opts)).id);

    // Worker A's mail provider accepts the email and takes a minute to answer: A dies waiting.
    const workerA = procs.start(SLUG, 'worker.ts', {
      name: 'worker A (worker.ts)',
      env: {
        ...serviceEnv('redis'),
        QUEUE_PREFIX: jobs.prefix,
        LOCK_DURATION_MS: String(stall.lockDurationMs),
        STALLED_INTERVAL_MS: String(stall.stalledIntervalMs),
        MAX_STALLED_COUNT: String(stall.maxStalledCount),
        MAILER_REPLY_MS: '60000',
        EMAIL_CONCURRENCY: '1',
      },
    });
    const accepted = new RegExp(`accepted .* for ${ada.email.replace(/[.+]/g, '\\$&')}`, 'g');
    await workerA.waitForOutput(accepted, `passed Ada's welcome email to the mail provider (job "${jobId}")`, 30_000);
    await workerA.kill('SIGKILL');
    const killedAt = Date.now();
    expect(FINISHED, 'worker A was killed while the provider had not answered: its job should not be finished in ' +
      `Redis. Await the send before the processor returns (${WHERE}/processors.ts)`).not.toContain(await jobs.state(EMAIL_QUEUE, jobId));

    // Worker B, in the check's process, with the lesson's processors and a provider of the check's.
    const provider = checkMailer();
    await jobs.startLessonWorker(queues, { mailer: provider.mailer }, { emails: 1, reports: 1 });
    await vi.waitFor(async () => expect(await jobs.state(EMAIL_QUEUE, jobId), `job "${jobId}" was still not done ` +
      `${((Date.now() - killedAt) / 1000).toFixed(1)} s after its worker was killed. Bull finds a stalled job once its ` +
      'lock has expired (lockDuration, 30 s unless set) by looking every stalledInterval: pass config.stall to the ' +
      `queues' settings (${WHERE}/queues.ts)`).toBe('completed'), { timeout: 10_000, interval: 25 });

    const stalled = await redis.connect().hget(jobs.key(EMAIL_QUEUE, jobId), 'stalledCounter');
    expect(stalled, 'bull should have counted the job as stalled once, and moved it back to wait').toBe('1');
    const job = (await jobs.job(EMAIL_QUEUE, jobId))!;
    ensure((job.processedOn ?? 0) >= killedAt, 'the job should have been run again by worker B, after A was killed');
    const emails = (workerA.output().match(accepted)?.length ?? 0) + provider.sent(ada.email).length;
    expect(emails, `Ada got ${emails} welcome emails: worker A's went out before it died, and the rerun sent another. ` +
      'Worker A never heard the provider answer, so a record written after the send does not exist either. Claim the ' +
      `record before calling the provider (SET key value NX) and skip the send when it is there (${WHERE}/processors.ts)`).toBe(1);
  });

  test('POST /signups answers 202 Accepted with the job id and a Location at once, while its email job is still held, and the job completes afterwards', async ({ jobs, procs }) => {
    const server = await procs.startHttp(SLUG, 'server.ts', {
      env: { ...serviceEnv('redis'), QUEUE_PREFIX: jobs.prefix },
      name: 'the server (server.ts)',
      readyPath: '/health',
      timeoutMs: 30_000,
    });
    // The check is the worker here, and it does not finish the email until it opens the gate.
    const gate = jobs.gate();
    const started: string[] = [];
    jobs.work(jobs.reader(EMAIL_QUEUE), 1, async (job) => {
      started.push(String(job.id));
      await gate.opened;
    });

    const signup = newSignup();
    const answer = await request(`${server.url}/signups`, { method: 'POST', body: signup }, {
      timeoutMs: 5_000,
      logs: () => server.process.output(),
      slow: 'POST /signups did not answer within 5 s while the check held its email job in progress: the request ' +
        'waits for the work. Add the job to the queue and answer 202 Accepted straight away; the worker sends the ' +
        `email after the answer has gone (${WHERE}/app.ts)`,
    });
    expect(answer.status, `POST /signups answered ${show(answer)}. The email is not sent yet when the answer goes out: ` +
      `answer 202 Accepted, which says "taken, not done" (${WHERE}/app.ts)`).toBe(202);
    const jobId = jobIdOf(answer, 'POST /signups');
    expectLocation(answer, jobId, 'POST /signups');

    const stored = await jobs.job(EMAIL_QUEUE, jobId);
    expect(stored, `POST /signups answered with job id "${jobId}", but Redis has no such job under the prefix ` +
      `"${jobs.prefix}": add the job with queues.emails.add(...) (${WHERE}/app.ts), on a queue opened with ` +
      `{ prefix: config.prefix } (${WHERE}/queues.ts)`).not.toBeNull();
    expect(stored!.data, `the job's data should be the signup as it was posted (${WHERE}/app.ts)`).toEqual(signup);
    expect(await stored!.getState(), 'the answer came while the check still held the job, so it cannot be finished yet')
      .not.toBe('completed');

    gate.open();
    await vi.waitFor(async () => expect(await jobs.state(EMAIL_QUEUE, jobId), `once the check let the work go on, job ` +
      `"${jobId}" should complete`).toBe('completed'), DEADLINE);
    expect(started, 'the job should have run once').toEqual([jobId]);
  });

  test('a send that throws is attempted exactly the configured number of times, bull scheduling retry n round((2^n - 1) x delay) after the failure, capped at the maximum', async ({ jobs }) => {
    // The cap is reached by the 5th retry; bull's and BullMQ's curves are 90 and 210 ms apart by the 3rd and 4th.
    const retry = { attempts: 6, backoffDelayMs: 30, maxBackoffMs: 500 };
    const queues = jobs.lessonQueues(jobs.config({ emailRetry: retry }));
    const ada = newSignup('Ada');
    const provider = checkMailer({ failFor: [ada.email], failWith: 'throw' });
    // Bull announces on this channel when each retry is due; the 'failed' event comes once it is stored.
    const due = await jobs.retriesDue(EMAIL_QUEUE);
    const failedAt: number[] = [];
    queues.emails.on('failed', () => void failedAt.push(Date.now()));
    await jobs.startLessonWorker(queues, { mailer: provider.mailer }, { emails: 1, reports: 1 });
    const spec = welcomeEmailJob(ada);
    const jobId = String((await queues.emails.add(spec.name, spec.data, spec.opts)).id);

    await vi.waitFor(async () => expect(FINISHED, `job "${jobId}" should end, failed, after its attempts`)
      .toContain(await jobs.state(EMAIL_QUEUE, jobId)), DEADLINE);
    const job = (await jobs.job(EMAIL_QUEUE, jobId))!;
    const attempts = provider.calls(ada.email).map((c) => c.at);
    expect(attempts.length, `the worker never called mailer.send for job "${jobId}" (${WHERE}/processors.ts)`).toBeGreaterThan(0);
    if ((await job.getState()) === 'completed') {
      expect.fail(job.attemptsMade === 0
        ? 'every send threw, yet the job completed on its first attempt: the processor caught the error. Let it reach ' +
          `bull (await the send and do not catch it), or bull never retries (${WHERE}/processors.ts)`
        : `the first send threw, and the retry completed without calling the provider: it found the sent record that ` +
          `the failed attempt had claimed. Give the claim back (DEL) when the send fails (${WHERE}/processors.ts)`);
    }
    expect(attempts.length, attempts.length === 1
      ? `the job failed after one attempt. Bull's default is attempts: 1, and a backoff without attempts is never used ` +
        `(the job was stored with ${JSON.stringify({ attempts: job.opts.attempts, backoff: job.opts.backoff })}). Set ` +
        `attempts from config.emailRetry in the emails queue's defaultJobOptions (${WHERE}/queues.ts)`
      : `expected ${retry.attempts} attempts (config.emailRetry.attempts), got ${attempts.length} (${WHERE}/queues.ts)`)
      .toBe(retry.attempts);

    const expected = attempts.slice(1).map((_, i) => Math.min(retry.maxBackoffMs, Math.round((2 ** (i + 1) - 1) * retry.backoffDelayMs)));
    expect(due.length, `bull announced ${due.length} delayed retries for ${retry.attempts - 1} retries: with a backoff, ` +
      `every retry waits in the delayed set (${WHERE}/queues.ts)`).toBe(expected.length);
    // Bull fixes each due time when it stores the failure: after the send threw, before 'failed' is emitted.
    // So the wait it chose is at most (due - throw) and at least (due - failed), whatever the machine's load.
    const atMost = due.map((at, i) => at - attempts[i]!);
    const atLeast = due.map((at, i) => at - failedAt[i]!);
    const report = `after each failure bull scheduled the retry ${atMost.map((most, i) => `${Math.max(0, atLeast[i]!)}-${most}`).join(', ')} ms ` +
      `later; bull's exponential curve capped at ${retry.maxBackoffMs} ms gives ${expected.join(', ')} ms`;
    for (const [i, wait] of expected.entries()) {
      const n = i + 1;
      expect(atMost[i], `${report}. Retry ${n} is due too early: after ${n} failed attempt(s) bull's exponential backoff ` +
        `waits round((2^${n} - 1) x ${retry.backoffDelayMs}) = ${Math.round((2 ** n - 1) * retry.backoffDelayMs)} ms ` +
        `(node_modules/bull/lib/backoffs.js); 2^(n-1) x delay is BullMQ's formula (${WHERE}/queues.ts)`).toBeGreaterThanOrEqual(wait);
      expect(atLeast[i], `${report}. Retry ${n} is due too late: no wait may be longer than maxBackoffMs ` +
        `(${WHERE}/queues.ts)`).toBeLessThanOrEqual(wait);
    }
    // The attempts themselves: never before their time, and not long after it.
    for (const [i, gap] of gapsOf(attempts).entries()) {
      expect(gap, `attempt ${i + 2} ran ${gap} ms after attempt ${i + 1}, before its retry was due`).toBeGreaterThanOrEqual(expected[i]!);
      expect(gap, `attempt ${i + 2} ran ${gap} ms after attempt ${i + 1}, long after its retry was due at ${expected[i]} ms`)
        .toBeLessThanOrEqual(expected[i]! * 4 + 2_000);
    }
    expect(job.failedReason, 'the failed job should keep the last error as its reason').toContain('the mail provider is down');
  });

  test('each account starts at most the rate limit\'s number of reports per period, and another account\'s report is not held back', async ({ jobs }) => {
    const limit = { max: 2, durationMs: 600 };
    const queues = jobs.lessonQueues(jobs.config({ reportRateLimit: limit }));
    const builder = checkBuilder(5);
    // Account A asks for three reports, then account B for one, all waiting before the worker starts.
    const ids: string[] = [];
    for (let i = 1; i <= 3; i++) ids.push(String((await queues.reports.add(MONTHLY_REPORT, newReport({ accountId: 'acct-a', month: `2025-0${i}` }))).id));
    const bId = String((await queues.reports.add(MONTHLY_REPORT, newReport({ accountId: 'acct-b', month: '2025-01' }))).id);
    await jobs.startLessonWorker(queues, { buildReport: builder.build }, { emails: 1, reports: 10 });

    await vi.waitFor(async () => {
      for (const id of [...ids, bId]) expect(await jobs.state(REPORT_QUEUE, id), `report job "${id}" should complete ` +
        `(${WHERE}/processors.ts)`).toBe('completed');
    }, DEADLINE);
    // When bull let each report start, as its worker recorded it in Redis (processedOn).
    const startedAt = async (id: string) => (await jobs.job(REPORT_QUEUE, id))!.processedOn!;
    const a = (await Promise.all(ids.map(startedAt))).sort((x, y) => x - y);
    const b = await startedAt(bId);
    const offsets = a.map((at) => at - a[0]!);
    for (let i = 0; i + limit.max < a.length; i++) {
      // Bull counts in fixed windows from each window's first start; half a window allows for timer drift.
      expect(a[i + limit.max]! - a[i]!, `account A's reports started at +${offsets.join(', +')} ms: ${limit.max + 1} of them ` +
        `within ${a[i + limit.max]! - a[i]!} ms, with a limit of ${limit.max} per ${limit.durationMs} ms. Give the ` +
        `reports queue limiter: { max, duration, groupKey: 'accountId' } from config.reportRateLimit (${WHERE}/queues.ts)`)
        .toBeGreaterThanOrEqual(limit.durationMs / 2);
    }
    ensure(b < a[limit.max]!, `account B's only report started at +${b - a[0]!} ms, after account A's third ` +
      `(+${offsets[limit.max]} ms): it waited behind A's limit. The limit is per account: set the limiter's groupKey ` +
      `to 'accountId' (${WHERE}/queues.ts)`);
  });

  test('a report scheduled with notBefore runs after that time and not before, and one scheduled in the past runs at once', async ({ jobs }) => {
    const queues = jobs.checkQueues();
    const base = await jobs.serve(queues);
    const logs = () => jobs.appErrors.join('\n');
    const starts = new Map<string, number>();
    jobs.work(queues.reports, 2, async (job) => void starts.set(job.data.month, Date.now()));

    const lead = 400;
    const notBefore = Date.now() + lead;
    const later = await request(`${base}/reports`, { method: 'POST', body: newReport({ month: '2025-04', notBefore: new Date(notBefore).toISOString() }) }, { logs });
    const laterId = jobIdOf(later, 'POST /reports');
    const pastPosted = Date.now();
    const past = await request(`${base}/reports`, { method: 'POST', body: newReport({ month: '2025-05', notBefore: new Date(pastPosted - 60_000).toISOString() }) }, { logs });
    const pastId = jobIdOf(past, 'POST /reports');

    const stored = (await jobs.job(REPORT_QUEUE, laterId))!;
    expect(stored.opts.delay ?? 0, `the report due at notBefore, ${lead} ms ahead, was stored with a delay of ` +
      `${stored.opts.delay} ms. bull's delay is a duration in milliseconds from now, not a moment: ` +
      `Date.parse(notBefore) - now (${WHERE}/jobs.ts)`).toBeLessThanOrEqual(lead);
    await vi.waitFor(() => ensure(starts.has('2025-05'), `a report whose notBefore has passed should run at once; job ` +
      `"${pastId}" did not start within 3 s. A moment in the past means no delay (${WHERE}/jobs.ts)`), { timeout: 3_000, interval: 10 });
    await vi.waitFor(async () => ensure(starts.has('2025-04'), `the report scheduled for ${new Date(notBefore).toISOString()} ` +
      `had not started ${Date.now() - notBefore} ms after that (its job is ${await jobs.state(REPORT_QUEUE, laterId)}, ` +
      `stored with a delay of ${stored.opts.delay} ms) (${WHERE}/jobs.ts)`), { timeout: 5_000, interval: 10 });
    const ran = starts.get('2025-04')!;
    ensure(ran >= notBefore, `the report scheduled for notBefore ran ${notBefore - ran} ms before that moment: give the ` +
      `job a delay lasting until then, Date.parse(notBefore) - now (${WHERE}/jobs.ts)`);
    // Bound as generous as the wait above: a busy machine makes bull's promotion of delayed jobs seconds late.
    expect(ran - notBefore, `the scheduled report should run soon after its time (${WHERE}/jobs.ts)`).toBeLessThanOrEqual(5_000);
    expect(starts.get('2025-05')! - pastPosted, 'the report scheduled in the past should run at once').toBeLessThanOrEqual(3_000);
  });

  test('a repeated signup after the welcome email failed for good runs the job again instead of being silently ignored', async ({ jobs }) => {
    const queues = jobs.checkQueues();
    const base = await jobs.serve(queues);
    const logs = () => jobs.appErrors.join('\n');
    const runs: string[] = [];
    jobs.work(queues.emails, 1, async (job) => {
      runs.push(String(job.id));
      if (runs.length === 1) throw new Error('the mail provider is down');
    });
    const ada = newSignup('Ada');

    const first = await request(`${base}/signups`, { method: 'POST', body: ada }, { logs });
    const jobId = jobIdOf(first, 'POST /signups');
    await vi.waitFor(async () => expect(await jobs.state(EMAIL_QUEUE, jobId), `job "${jobId}" should fail (the check's ` +
      'worker fails it once)').toBe('failed'), DEADLINE);

    const again = await request(`${base}/signups`, { method: 'POST', body: ada }, { logs });
    expect(again.status, `the email job had failed for good, and the repeated signup answered ${show(again)}: there is ` +
      `work to do again, 202 Accepted (${WHERE}/app.ts)`).toBe(202);
    expect(again.body.jobId, `the repeated signup should carry the user's job id (${WHERE}/jobs.ts)`).toBe(jobId);
    await vi.waitFor(() => expect(runs.length, `the email job had failed and the user signed up again, but the job never ran ` +
      'again. Bull keeps failed jobs, and add() with the id of a kept job silently stores nothing. When getJob(id) ' +
      `finds it failed, remove it and add it again (${WHERE}/app.ts)`).toBe(2), DEADLINE);
    await vi.waitFor(async () => expect(await jobs.state(EMAIL_QUEUE, jobId), 'the job run again should complete').toBe('completed'), DEADLINE);
  });

  test('the report worker builds at most the configured number of reports at once, uses that many, and stores each result and its progress', async ({ jobs }) => {
    const queues = jobs.lessonQueues(jobs.config());
    const hold = jobs.gate();
    const builder = checkBuilder(10, hold.opened);
    await jobs.startLessonWorker(queues, { buildReport: builder.build }, { emails: 1, reports: 3 });
    const reports = Array.from({ length: 8 }, (_, i) => newReport({ month: `2025-${String(i + 1).padStart(2, '0')}` }));
    const ids = await Promise.all(reports.map(async (report) => String((await queues.reports.add(MONTHLY_REPORT, report)).id)));

    // Every build is held: the worker should fill its three slots, and start nothing more.
    await vi.waitFor(() => expect(builder.running(), `${builder.running()} report(s) were being built at once while every ` +
      'build was held, with 8 waiting and a concurrency of 3: pass concurrency.reports to ' +
      `queue.process(name, concurrency, processor) (${WHERE}/processors.ts)`).toBeGreaterThanOrEqual(3), DEADLINE);
    await sleep(200);
    expect(builder.mostAtOnce(), `${builder.mostAtOnce()} reports were being built at the same time, with a concurrency ` +
      'of 3. A processor must return the promise of its work (await buildReport), or bull counts the job done at ' +
      `once and starts the next (${WHERE}/processors.ts)`).toBeLessThanOrEqual(3);
    hold.open();

    await vi.waitFor(async () => {
      for (const id of ids) expect(FINISHED, `report job "${id}" should finish`).toContain(await jobs.state(REPORT_QUEUE, id));
    }, DEADLINE);
    expect(builder.starts.length, `${builder.starts.length} builds for ${reports.length} reports (${WHERE}/processors.ts)`).toBe(reports.length);
    expect(builder.mostAtOnce(), `at most 3 reports may be built at once (${WHERE}/processors.ts)`).toBeLessThanOrEqual(3);
    for (const [i, id] of ids.entries()) {
      const job = (await jobs.job(REPORT_QUEUE, id))!;
      expect(await job.getState(), `report job "${id}" failed: ${job.failedReason} (${WHERE}/processors.ts)`).toBe('completed');
      expect(job.returnvalue, `the report's result should be the job's result: return what buildReport returns ` +
        `(${WHERE}/processors.ts)`).toEqual({ url: `check/${reports[i]!.accountId}/${reports[i]!.month}.pdf`, rows: 7 });
      expect(job.progress(), `the builder reported 100 %, and the job should store it: pass (percent) => job.progress(percent) ` +
        `as onProgress (${WHERE}/processors.ts)`).toBe(100);
    }
  });

  test('the welcome email processor sends one email per user even when two jobs for that user run at once or one after the other', async ({ jobs }) => {
    const queues = jobs.lessonQueues(jobs.config());
    const ada = newSignup('Ada');
    // The provider takes Ada's first email and does not answer until the second job has had its turn.
    const reply = jobs.gate();
    const provider = checkMailer({ hold: reply.opened });
    await jobs.startLessonWorker(queues, { mailer: provider.mailer }, { emails: 3, reports: 1 });
    const spec = welcomeEmailJob(ada);
    // Two jobs for one user at the same time: a job re-added by hand, a second producer, a bug upstream.
    const first = String((await queues.emails.add(spec.name, spec.data, spec.opts)).id);
    await vi.waitFor(() => expect(provider.calls(ada.email).length, `job "${first}" never called mailer.send ` +
      `(${WHERE}/processors.ts)`).toBeGreaterThan(0), DEADLINE);
    const second = String((await queues.emails.add(spec.name, spec.data, { ...spec.opts, jobId: `check-copy-${ada.userId}` })).id);
    await vi.waitFor(async () => ensure(provider.calls(ada.email).length > 1 || FINISHED.includes((await jobs.state(EMAIL_QUEUE, second)) ?? ''),
      `the second job for Ada, "${second}", neither called the provider nor finished while the first was sending`), DEADLINE);
    reply.open();
    await vi.waitFor(async () => {
      for (const id of [first, second]) expect(FINISHED, `job "${id}" should finish`).toContain(await jobs.state(EMAIL_QUEUE, id));
    }, DEADLINE);
    for (const id of [first, second]) {
      const job = (await jobs.job(EMAIL_QUEUE, id))!;
      expect(await job.getState(), `job "${id}" ${job.failedReason ? `failed: ${job.failedReason}` : 'failed'}. A job that ` +
        'finds the email already handled has nothing left to do: it should complete (return), not throw, or bull ' +
        `retries it (${WHERE}/processors.ts)`).toBe('completed');
    }
    expect(provider.sent(ada.email).length, `two jobs for one user ran at the same time and the provider was asked ` +
      `${provider.sent(ada.email).length} times to send her welcome email. Checking for a record and writing it later ` +
      'leaves a gap in which both find nothing: claim the record before calling the provider, in one atomic step ' +
      `(SET key value NX), and skip the send when the claim fails (${WHERE}/processors.ts)`).toBe(1);

    const later = String((await queues.emails.add(spec.name, spec.data, { ...spec.opts, jobId: `check-later-${ada.userId}` })).id);
    await vi.waitFor(async () => expect(FINISHED, `job "${later}" should finish`).toContain(await jobs.state(EMAIL_QUEUE, later)), DEADLINE);
    expect(await jobs.state(EMAIL_QUEUE, later), `a later job for the same user should complete without sending (${WHERE}/processors.ts)`).toBe('completed');
    expect(provider.sent(ada.email).length, `a later job for a user whose email was sent sent it again: keep the sent ` +
      `record and check it first (${WHERE}/processors.ts)`).toBe(1);
  });

  test('a send that rejects asynchronously is retried the same way, the job ends failed with the reason, and other users\' emails still go out', async ({ jobs }) => {
    const retry = { attempts: 3, backoffDelayMs: 20, maxBackoffMs: 1_000 };
    const queues = jobs.lessonQueues(jobs.config({ emailRetry: retry }));
    const ada = newSignup('Ada');
    const grace = newSignup('Grace');
    const provider = checkMailer({ failFor: [ada.email], failWith: 'reject', replyMs: 10 });
    await jobs.startLessonWorker(queues, { mailer: provider.mailer }, { emails: 2, reports: 1 });
    const ids: string[] = [];
    for (const signup of [ada, grace]) {
      const spec = welcomeEmailJob(signup);
      ids.push(String((await queues.emails.add(spec.name, spec.data, spec.opts)).id));
    }
    const [adaJob, graceJob] = ids as [string, string];

    await vi.waitFor(async () => {
      expect(FINISHED, `job "${adaJob}" should end, failed, after its attempts`).toContain(await jobs.state(EMAIL_QUEUE, adaJob));
      expect(await jobs.state(EMAIL_QUEUE, graceJob), `Grace's email job "${graceJob}" should complete while Ada's is ` +
        `retried (${WHERE}/processors.ts)`).toBe('completed');
    }, DEADLINE);
    const job = (await jobs.job(EMAIL_QUEUE, adaJob))!;
    const attempts = provider.calls(ada.email).map((c) => c.at);
    expect(await job.getState(), job.attemptsMade === 0
      ? 'the send rejected, yet the job completed: the processor did not wait for the promise or caught its ' +
        `rejection. Await mailer.send(...) and let the rejection reach bull (${WHERE}/processors.ts)`
      : 'the first send rejected, and the retry completed without sending: give the sent record back when the send ' +
        `fails (${WHERE}/processors.ts)`).toBe('failed');
    expect(attempts.length, `expected ${retry.attempts} attempts (config.emailRetry.attempts), got ${attempts.length}` +
      ` (${WHERE}/queues.ts)`).toBe(retry.attempts);
    const gaps = gapsOf(attempts);
    ensure(gaps.every((gap, i) => gap >= Math.round((2 ** (i + 1) - 1) * retry.backoffDelayMs) - 2), `the retries came ` +
      `after ${JSON.stringify(gaps)} ms, sooner than the backoff allows (${WHERE}/queues.ts)`);
    expect(job.failedReason, 'the failed job should keep the rejection as its reason').toContain('rejected for');
    expect(provider.sent(grace.email).length, 'Grace should get exactly one welcome email').toBe(1);
  });

  test('pro reports waiting in the queue are processed before free ones, each plan in order of arrival', async ({ jobs }) => {
    const queues = jobs.checkQueues();
    const base = await jobs.serve(queues);
    const logs = () => jobs.appErrors.join('\n');
    const arrivals: ReportRequest[] = [
      newReport({ accountId: 'free-1', plan: 'free' }),
      newReport({ accountId: 'pro-1', plan: 'pro' }),
      newReport({ accountId: 'free-2', plan: 'free' }),
      newReport({ accountId: 'pro-2', plan: 'pro' }),
      newReport({ accountId: 'free-3', plan: 'free' }),
    ];
    for (const report of arrivals) {
      const answer = await request(`${base}/reports`, { method: 'POST', body: report }, { logs });
      expect(answer.status, `POST /reports answered ${show(answer)} (${WHERE}/app.ts)`).toBe(202);
    }
    // Only now does a worker start, with one report at a time: the order is the queue's.
    const order: string[] = [];
    jobs.work(queues.reports, 1, async (job) => void order.push(job.data.accountId));
    await vi.waitFor(() => expect(order.length, 'every report should be processed').toBe(arrivals.length), DEADLINE);
    expect(order, `the reports were processed in the order ${order.join(', ')}. Pro reports go first: bull takes the ` +
      `lowest priority number first, and 1 is the highest priority (${WHERE}/jobs.ts)`).toEqual(['pro-1', 'pro-2', 'free-1', 'free-2', 'free-3']);
  });

  test('POST /reports answers 202 at once, and GET /jobs/:id follows the report from waiting through active with its progress to completed with its result', async ({ jobs }) => {
    const queues = jobs.checkQueues();
    const base = await jobs.serve(queues);
    const logs = () => jobs.appErrors.join('\n');
    const report = newReport({ plan: 'pro', month: '2025-03' });

    const answer = await request(`${base}/reports`, { method: 'POST', body: report }, { logs, timeoutMs: 3_000 });
    expect(answer.status, `POST /reports answered ${show(answer)}: a report takes minutes, so answer 202 Accepted and ` +
      `let the worker build it (${WHERE}/app.ts)`).toBe(202);
    const jobId = jobIdOf(answer, 'POST /reports');
    expectLocation(answer, jobId, 'POST /reports');
    const statusUrl = `${base}/jobs/${encodeURIComponent(jobId)}`;

    const waiting = await request(statusUrl, {}, { logs });
    expect(waiting.status, `GET /jobs/${jobId} answered ${show(waiting)} for the report just queued: look the id up in ` +
      `the queues (queue.getJob(id)) and answer with describeJob(...) (${WHERE}/app.ts)`).toBe(200);
    expect(waiting.body, `GET /jobs/:id should describe the report job before any worker took it (${WHERE}/app.ts)`)
      .toMatchObject({ id: jobId, queue: REPORT_QUEUE, state: 'waiting' });

    const progressed = new Gate();
    const gate = jobs.gate();
    jobs.workWithResult(queues.reports, 1, async (job) => {
      await job.progress(40);
      progressed.open();
      await gate.opened;
      return { url: 'check/report.pdf', rows: 3 };
    });
    await progressed.opened;
    const active = await request(statusUrl, {}, { logs });
    expect(active.body, `while the report is being built, GET /jobs/:id should say so, with its progress (${WHERE}/app.ts)`)
      .toMatchObject({ id: jobId, state: 'active', progress: 40 });

    gate.open();
    await vi.waitFor(async () => {
      const done = await request(statusUrl, {}, { logs });
      expect(done.body, `once built, GET /jobs/:id should show the report completed, with its result (${WHERE}/app.ts)`)
        .toMatchObject({ id: jobId, state: 'completed', result: { url: 'check/report.pdf', rows: 3 } });
    }, DEADLINE);
  });

  test('a repeated signup after the welcome email was sent answers 200 with the completed job and queues nothing new', async ({ jobs, redis }) => {
    const queues = jobs.checkQueues();
    const base = await jobs.serve(queues);
    const logs = () => jobs.appErrors.join('\n');
    const runs: string[] = [];
    jobs.workWithResult(queues.emails, 1, async (job) => {
      runs.push(String(job.id));
      return { sent: true, messageId: 'check-1' };
    });
    const ada = newSignup('Ada');

    const first = await request(`${base}/signups`, { method: 'POST', body: ada }, { logs });
    const jobId = jobIdOf(first, 'POST /signups');
    await vi.waitFor(async () => expect(await jobs.state(EMAIL_QUEUE, jobId), `job "${jobId}" should complete`).toBe('completed'), DEADLINE);

    const again = await request(`${base}/signups`, { method: 'POST', body: ada }, { logs });
    const client = redis.connect();
    const [waiting, active, completed] = await Promise.all([
      client.llen(jobs.key(EMAIL_QUEUE, 'wait')),
      client.llen(jobs.key(EMAIL_QUEUE, 'active')),
      client.zcard(jobs.key(EMAIL_QUEUE, 'completed')),
    ]);
    ensure(waiting === 0 && active === 0 && completed === 1, `after the repeated signup Redis holds ${waiting} waiting, ` +
      `${active} active and ${completed} completed email jobs: a second job was added for a user whose email is sent. ` +
      `The job id must come from the user, not from the request or the time (${WHERE}/jobs.ts)`);
    expect(again.status, `the repeated signup answered ${show(again)}. Bull kept the completed job, so add() with its ` +
      'id stored nothing and nothing will run: a 202 would promise work that never happens. Look the job up ' +
      `(queue.getJob) and answer 200 with it when it is completed (${WHERE}/app.ts)`).toBe(200);
    expect(again.body, `the 200 should carry the existing job's id and its state (${WHERE}/app.ts)`)
      .toMatchObject({ jobId, state: 'completed' });
    expectLocation(again, jobId, 'the repeated POST /signups');
    expect(runs, 'the email job should have run exactly once').toEqual([jobId]);
  });

  test('signing up the same user twice while the first email job waits makes one job, and both answers carry its id', async ({ jobs, redis }) => {
    const queues = jobs.checkQueues();
    const base = await jobs.serve(queues);
    const logs = () => jobs.appErrors.join('\n');
    const ada = newSignup('Ada');
    const grace = newSignup('Grace');

    const first = await request(`${base}/signups`, { method: 'POST', body: ada }, { logs });
    const firstId = jobIdOf(first, 'POST /signups');
    await sleep(5); // a later moment: an id made of the time would differ now
    const second = await request(`${base}/signups`, { method: 'POST', body: ada }, { logs });
    const other = await request(`${base}/signups`, { method: 'POST', body: grace }, { logs });
    expect([first.status, second.status, other.status], `the three signups were answered ${show(first)}, ${show(second)}, ` +
      `${show(other)}: a job that is still waiting is "accepted", 202 each time (${WHERE}/app.ts)`).toEqual([202, 202, 202]);
    expect(second.body.jobId, `the same user signed up twice and got two job ids, "${firstId}" and ` +
      `"${String(second.body.jobId)}": make the job id from the user (welcome-email-<userId>), so bull stores the ` +
      `second add as nothing new (${WHERE}/jobs.ts)`).toBe(firstId);
    expect(other.body.jobId, `two different users got the same job id "${firstId}": the second signup was silently ` +
      `dropped. The id must be unique per user (${WHERE}/jobs.ts)`).not.toBe(firstId);

    const waiting = await redis.connect().lrange(jobs.key(EMAIL_QUEUE, 'wait'), 0, -1);
    expect(waiting.sort(), `Redis should hold one waiting email job per user, ${firstId} and ${String(other.body.jobId)}; ` +
      `the wait list is ${JSON.stringify(waiting)} (${WHERE}/jobs.ts)`).toEqual([firstId, String(other.body.jobId)].sort());
  });

  test('an invalid request gets 400 naming the field and queues nothing, and an unknown job id gets 404', async ({ jobs, redis }) => {
    const queues = jobs.checkQueues();
    const base = await jobs.serve(queues);
    const logs = () => jobs.appErrors.join('\n');
    const cases: Array<{ path: string; body?: unknown; raw?: string; field: string }> = [
      { path: '/signups', body: { userId: 'user-1', email: 'not-an-address', name: 'Ada' }, field: 'email' },
      { path: '/signups', body: { email: 'ada@example.com', name: 'Ada' }, field: 'userId' },
      { path: '/reports', body: { accountId: 'acct-1', plan: 'gold', month: '2025-01' }, field: 'plan' },
      { path: '/reports', body: { accountId: 'acct:1', plan: 'pro', month: '2025-01' }, field: 'accountId' },
      { path: '/signups', raw: '{"userId": ', field: 'JSON' },
    ];
    for (const { path, body, raw, field } of cases) {
      const answer = await request(`${base}${path}`, { method: 'POST', body, raw }, { logs });
      const sent = raw ?? JSON.stringify(body);
      expect(answer.status, `POST ${path} with ${sent} answered ${show(answer)}: bad input is the client's mistake, ` +
        `400 Bad Request (parseSignup / parseReportRequest give the reasons) (${WHERE}/app.ts)`).toBe(400);
      expect(JSON.stringify(answer.body), `the 400 for ${sent} should name what is wrong (${field}) (${WHERE}/app.ts)`).toContain(field);
    }
    const client = redis.connect();
    const queued = [
      ...(await scanKeys(client, jobs.key(EMAIL_QUEUE, '*'))),
      ...(await scanKeys(client, jobs.key(REPORT_QUEUE, '*'))),
    ].filter((key) => /:(wait|delayed|priority)$/.test(key));
    expect(queued, `invalid requests must not be queued, but Redis has ${queued.join(', ')}: validate before ` +
      `adding the job (${WHERE}/app.ts)`).toEqual([]);

    const unknown = await request(`${base}/jobs/no-such-job`, {}, { logs });
    expect(unknown.status, `GET /jobs/no-such-job answered ${show(unknown)}: an id no queue holds is 404 Not Found ` +
      `(${WHERE}/app.ts)`).toBe(404);
  });
});
