import { gradedFolder } from './support/lesson.ts';
import { randomUUID } from 'node:crypto';
import { describe, expect, it, test, vi } from './support/fixtures.ts';
import type { UploadJob } from '@lesson/05-rabbitmq-work-queues/jobs.ts';
import { publishJobs } from '@lesson/05-rabbitmq-work-queues/producer.ts';
import { assertJobQueue, deadLetterQueueName } from '@lesson/05-rabbitmq-work-queues/queue.ts';
import { startWorker, type JobHandler } from '@lesson/05-rabbitmq-work-queues/worker.ts';
import { recordConsoleErrors } from './support/console.ts';
import { eventually } from './support/polling.ts';
import { uniqueName } from './support/names.ts';
import { CLASSIC_QUEUE, closeConsumerChannel, RabbitScope } from './support/rabbitmq.ts';
import { serviceEnv, serviceUrl } from './support/services.ts';

const SLUG = '05-rabbitmq-work-queues';
const WHERE = gradedFolder(SLUG);
const WAIT = { timeout: 5_000, interval: 20 };

function uploadJob(index: number): UploadJob {
  return {
    jobId: `job-${index}-${randomUUID().slice(0, 8)}`,
    fileName: `photo-${index}.jpg`,
    sizeBytes: 2_000_000 + index,
    uploadedBy: 'grace@example.com',
    uploadedAt: new Date().toISOString(),
  };
}

function uploadJobs(count: number): UploadJob[] {
  return Array.from({ length: count }, (_, i) => uploadJob(i + 1));
}

/** A promise that never settles: a job "in progress" for as long as the test needs it to be. */
const forever = new Promise<void>(() => {});

/** Everything assertJobQueue should state, as the broker compares it on a redeclare. */
function jobQueueSettings(queue: string) {
  return {
    durable: true,
    arguments: { ...CLASSIC_QUEUE, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': deadLetterQueueName(queue) },
  };
}

/** The check's own way to put jobs in a queue, so worker requirements do not depend on producer.ts. */
async function sendJobs(rabbit: RabbitScope, queue: string, jobs: readonly UploadJob[]): Promise<void> {
  const channel = await rabbit.confirmChannel();
  for (const job of jobs) channel.sendToQueue(queue, Buffer.from(JSON.stringify(job)), { persistent: true, messageId: job.jobId });
  await channel.waitForConfirms();
}

/** What assertJobQueue and publishJobs throw on the shared broker, if anything (a TODO, a hang). */
async function producerFailure(): Promise<unknown> {
  const shared = new RabbitScope(() => serviceUrl('rabbitmq'));
  let timer: NodeJS.Timeout | undefined;
  // Milliseconds on an idle machine; the limit only tells a hang (a drain never awaited) from a busy
  // machine, where a first connection to a broker in a container has been seen to take over 10 s.
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`assertJobQueue and publishJobs did not finish within 25 s (${WHERE}/queue.ts, producer.ts)`)), 25_000);
  });
  try {
    const queue = shared.queue(uniqueName('uploads'));
    shared.queue(deadLetterQueueName(queue));
    await Promise.race([
      (async () => {
        await assertJobQueue(await shared.channel(), queue);
        await publishJobs(await shared.confirmChannel(), queue, uploadJobs(1));
      })(),
      hang,
    ]);
    return undefined;
  } catch (error) {
    return error;
  } finally {
    clearTimeout(timer);
    await shared.cleanup();
  }
}

describe('05 rabbitmq-work-queues', () => {

  /** A durable classic queue declared by the check, for requirements about the worker alone. */
  async function jobQueue(rabbit: RabbitScope): Promise<string> {
    const queue = rabbit.queue(uniqueName('uploads'));
    await (await rabbit.channel()).assertQueue(queue, { durable: true, arguments: CLASSIC_QUEUE });
    return queue;
  }

  /** The same, dead-lettering into a queue of its own the way assertJobQueue should: for worker requirements about failures. */
  async function jobQueueWithDeadLetters(rabbit: RabbitScope): Promise<{ queue: string; deadLetters: string }> {
    const queue = rabbit.queue(uniqueName('uploads'));
    const deadLetters = rabbit.queue(deadLetterQueueName(queue));
    const channel = await rabbit.channel();
    await channel.assertQueue(deadLetters, { durable: true, arguments: CLASSIC_QUEUE });
    await channel.assertQueue(queue, jobQueueSettings(queue));
    return { queue, deadLetters };
  }

  /** Starts the learner's worker in this process, on a connection of its own. */
  async function worker(rabbit: RabbitScope, queue: string, name: string, handle: JobHandler, prefetch = 1) {
    const connection = await rabbit.connect();
    const channel = await rabbit.channel(connection);
    await startWorker(channel, queue, handle, { prefetch, name });
    return { connection, channel };
  }

  it('jobs are published to the durable queue as persistent JSON messages', async ({ rabbit }) => {
    const queue = rabbit.queue(uniqueName('uploads'));
    rabbit.queue(deadLetterQueueName(queue));
    await assertJobQueue(await rabbit.channel(), queue);
    const jobs = uploadJobs(3);
    await publishJobs(await rabbit.confirmChannel(), queue, jobs);

    // Asked on the check's own connection: the queue as the broker holds it.
    const durable = await rabbit.queueMismatch(queue, jobQueueSettings(queue));
    expect(durable, `assertJobQueue should declare "${queue}" as a durable classic queue that dead-letters to ` +
      `"${deadLetterQueueName(queue)}" ('x-dead-letter-exchange': '', 'x-dead-letter-routing-key': ` +
      `deadLetterQueueName(queue)); redeclaring it that way failed with: ${durable} (${WHERE}/queue.ts)`).toBeUndefined();
    expect(await rabbit.queueExists(deadLetterQueueName(queue)), `the job queue dead-letters to ` +
      `"${deadLetterQueueName(queue)}", which does not exist: the broker drops what it dead-letters to a missing ` +
      `queue. Declare the dead-letter queue too, durable and classic (${WHERE}/queue.ts)`).toBe(true);
    const parked = await rabbit.queueMismatch(deadLetterQueueName(queue), { durable: true, arguments: CLASSIC_QUEUE });
    expect(parked, `the dead-letter queue "${deadLetterQueueName(queue)}" should be durable and classic, like the job ` +
      `queue; redeclaring it that way failed with: ${parked}. A dead-letter queue that is not durable loses every ` +
      `parked job when the broker restarts (${WHERE}/queue.ts)`).toBeUndefined();

    const messages = await rabbit.drain(queue);
    expect(messages.length, `publishJobs sent ${jobs.length} jobs and the queue held ${messages.length}: send each ` +
      `job to the queue with channel.sendToQueue(queue, ...) (${WHERE}/producer.ts)`).toBe(jobs.length);
    for (const message of messages) {
      expect(message.properties.deliveryMode, 'jobs must be persistent (delivery mode 2), or a broker restart ' +
        `deletes them even from a durable queue: pass { persistent: true } (${WHERE}/producer.ts)`).toBe(2);
      expect(message.properties.contentType, `set { contentType: 'application/json' } (${WHERE}/producer.ts)`).toBe('application/json');
    }
    expect(messages.map((m) => JSON.parse(m.content.toString('utf8')) as unknown), 'the bodies should be the jobs ' +
      `as JSON, in the order published: use encodeJob(job) (${WHERE}/producer.ts)`).toEqual(jobs);
  });

  it('each job is processed by exactly one worker when all jobs succeed', async ({ rabbit }) => {
    const queue = await jobQueue(rabbit);
    const processed: Array<{ worker: string; jobId: string }> = [];
    const workers = await Promise.all(['worker-a', 'worker-b', 'worker-c'].map((name) =>
      worker(rabbit, queue, name, async (job) => void processed.push({ worker: name, jobId: job.jobId }))));
    const jobs = uploadJobs(12);
    await sendJobs(rabbit, queue, jobs);

    await vi.waitFor(() => expect(processed.length, `${jobs.length} jobs were queued for three workers and ` +
      `${processed.length} were processed. If each worker stopped after its first job, it never acknowledged it: ` +
      `with a prefetch limit the broker sends no more until the worker acks (${WHERE}/worker.ts)`)
      .toBeGreaterThanOrEqual(jobs.length), WAIT);
    const ids = processed.map((p) => p.jobId).sort();
    expect(ids, 'some jobs were processed more than once or not at all, although every job succeeded ' +
      `(${WHERE}/worker.ts)`).toEqual(jobs.map((j) => j.jobId).sort());

    await Promise.all(workers.map((w) => closeConsumerChannel(w.channel)));
    const left = await rabbit.readyMessages(queue);
    expect(left, `every job was processed, but ${left} went back to the queue when the workers disconnected: ` +
      `they were never acknowledged. Call channel.ack(message) once the handler has finished (${WHERE}/worker.ts)`).toBe(0);
  });

  it('a job is acknowledged only after its work is done', async ({ rabbit }) => {
    const queue = await jobQueue(rabbit);
    const started: string[] = [];
    const { connection, channel } = await worker(rabbit, queue, 'worker-a', async (job) => {
      started.push(job.jobId);
      await forever;
    });
    const [job] = uploadJobs(1);
    await sendJobs(rabbit, queue, [job!]);
    await vi.waitFor(() => expect(started, `the worker never started job ${job!.jobId} (${WHERE}/worker.ts)`)
      .toContain(job!.jobId), WAIT);

    // A round trip on the worker's channel first: the broker handles a channel's frames in order, so
    // an ack the worker sent before it is settled. Closing at once could overtake that ack (amqplib
    // interleaves the frames of a connection's channels), and the job would come back as if unacked.
    await channel.checkQueue(queue);
    // The worker disappears while the job is in progress.
    await connection.close();
    await vi.waitFor(async () => expect(await rabbit.readyMessages(queue), `job ${job!.jobId} was still in ` +
      'progress when its worker disconnected, and the broker did not put it back in the queue: it had already ' +
      'been acknowledged, so it is lost. Consume with { noAck: false } and call channel.ack(message) only after ' +
      `the handler has finished (${WHERE}/worker.ts)`).toBe(1), WAIT);
    const [back] = await rabbit.drain(queue);
    expect(back?.fields.redelivered, 'a job returned by a worker that never acknowledged it comes back flagged ' +
      'redelivered').toBe(true);
  });

  it('a worker killed mid-job has its job redelivered to another worker, flagged redelivered, and completed once', async ({ rabbit, procs }) => {
    const queue = rabbit.queue(uniqueName('uploads'));
    rabbit.queue(deadLetterQueueName(queue));
    const env = (name: string, workMs: number) => ({ ...serviceEnv('rabbitmq'), JOB_QUEUE: queue, WORKER_NAME: name, WORK_MS: String(workMs) });
    // worker-a takes a minute per job: it will still be busy when it is killed.
    const slow = procs.start(SLUG, 'worker-main.ts', { env: env('worker-a', 60_000), name: 'worker-a (worker-main.ts)' });
    await slow.waitForOutput(/ready: consuming/, 'reported it was ready');
    const [job] = uploadJobs(1);
    await sendJobs(rabbit, queue, [job!]);
    await slow.waitForOutput(new RegExp(`started ${job!.jobId}`), `started job ${job!.jobId}`);

    const fast = procs.start(SLUG, 'worker-main.ts', { env: env('worker-b', 10), name: 'worker-b (worker-main.ts)' });
    await fast.waitForOutput(/ready: consuming/, 'reported it was ready');
    await slow.kill('SIGKILL');

    const completed = await fast.waitForOutput(new RegExp(`completed ${job!.jobId} redelivered=(\\w+)`),
      `completed job ${job!.jobId}, which worker-a was working on when it was killed. The broker gives an ` +
      'unacknowledged job to another worker when its worker dies; an acknowledged one is gone. Consume with ' +
      `{ noAck: false } and ack only after the work is done (${WHERE}/worker.ts)`, 10_000);
    expect(completed[1], `worker-b completed the job, but it was not flagged redelivered: pass ` +
      `message.fields.redelivered to the handler (${WHERE}/worker.ts)`).toBe('true');

    const completions = (slow.output() + fast.output()).match(new RegExp(`completed ${job!.jobId}`, 'g')) ?? [];
    expect(completions.length, `job ${job!.jobId} was completed ${completions.length} times`).toBe(1);
    expect(await rabbit.readyMessages(queue), 'the queue should be empty once the job is done').toBe(0);
  });

  it('prefetch gives fair dispatch: a slow worker holds one job while a fast worker does the rest', async ({ rabbit }) => {
    const queue = await jobQueue(rabbit);
    const slowJobs: string[] = [];
    const fastJobs: string[] = [];
    // The slow worker starts every job it gets and finishes none of them during the test.
    await worker(rabbit, queue, 'slow-worker', async (job) => {
      slowJobs.push(job.jobId);
      await forever;
    });
    await worker(rabbit, queue, 'fast-worker', async (job) => void fastJobs.push(job.jobId));
    const jobs = uploadJobs(10);
    await sendJobs(rabbit, queue, jobs);

    await vi.waitFor(() => expect(fastJobs.length, `the fast worker finished ${fastJobs.length} of ${jobs.length} ` +
      `jobs while the slow worker held ${slowJobs.length} (one in progress, the rest waiting behind it). Without a ` +
      'prefetch limit the broker hands out jobs round-robin as fast as it can, whatever each worker is busy with. ' +
      `Call channel.prefetch(options.prefetch) before channel.consume (${WHERE}/worker.ts)`)
      .toBeGreaterThanOrEqual(jobs.length - 1), WAIT);
    expect(slowJobs.length, 'with prefetch 1, the slow worker should hold at most one job').toBeLessThanOrEqual(1);
    expect([...slowJobs, ...fastJobs].sort(), 'every job should reach exactly one worker').toEqual(jobs.map((j) => j.jobId).sort());
  });

  it('publishJobs waits for publisher confirms and rejects when the broker refuses a job', async ({ rabbit }) => {
    // A queue that holds two jobs and refuses (nacks) any more: the broker saying "not taken".
    const queue = rabbit.queue(uniqueName('uploads-full'));
    await (await rabbit.channel()).assertQueue(queue, {
      durable: true,
      arguments: { ...CLASSIC_QUEUE, 'x-max-length': 2, 'x-overflow': 'reject-publish' },
    });
    const channel = await rabbit.confirmChannel();

    const accepted = uploadJobs(2);
    await publishJobs(channel, queue, accepted);
    expect(await rabbit.readyMessages(queue), 'publishJobs resolved before the broker had every job: wait for ' +
      `the confirms with await channel.waitForConfirms() (${WHERE}/producer.ts)`).toBe(2);

    const refused = [uploadJob(3)];
    const outcome = await publishJobs(channel, queue, refused).then(() => 'resolved', (error: unknown) => `rejected: ${String(error)}`);
    expect(outcome, 'the broker refused a job (the queue was full) and publishJobs still resolved, so the caller ' +
      'believes it was queued. With publisher confirms the broker acks or nacks every message: await ' +
      `channel.waitForConfirms(), which rejects on a nack (${WHERE}/producer.ts)`).toMatch(/^rejected/);
  });

  it('a malformed job is rejected without stopping the worker', async ({ rabbit }) => {
    const { queue, deadLetters } = await jobQueueWithDeadLetters(rabbit);
    const processed: string[] = [];
    const { channel } = await worker(rabbit, queue, 'worker-a', async (job) => void processed.push(job.jobId));
    const raw = await rabbit.confirmChannel();
    raw.sendToQueue(queue, Buffer.from('<thumbnail please>'), { persistent: true });
    raw.sendToQueue(queue, Buffer.from(JSON.stringify({ jobId: 7, fileName: '' })), { persistent: true });
    await raw.waitForConfirms();
    const valid = uploadJob(1);
    await sendJobs(rabbit, queue, [valid]);

    await vi.waitFor(() => expect(processed, 'after two malformed jobs, a valid job was never processed: reject a ' +
      `message that cannot be parsed with channel.nack(message, false, false) so the worker moves on (${WHERE}/worker.ts)`)
      .toContain(valid.jobId), WAIT);
    expect(processed, `only the valid job should reach the handler (${WHERE}/worker.ts)`).toEqual([valid.jobId]);

    await closeConsumerChannel(channel);
    const left = await rabbit.readyMessages(queue);
    expect(left, `${left} message(s) went back to the queue when the worker disconnected: the malformed jobs were ` +
      'neither acknowledged nor rejected, or were requeued to fail again forever. Reject them without requeue ' +
      `(${WHERE}/worker.ts)`).toBe(0);
    expect(await rabbit.readyMessages(deadLetters), `the two malformed jobs should be in the dead-letter queue ` +
      `"${deadLetters}" once rejected; requeued or acknowledged, they never get there (${WHERE}/worker.ts)`).toBe(2);
  });

  it('a job whose handler throws or rejects is retried once, then parked in the dead-letter queue and reported, and the other jobs go on', async ({ rabbit, onTestFinished }) => {
    const { queue, deadLetters } = await jobQueueWithDeadLetters(rabbit);
    const errors = recordConsoleErrors(onTestFinished);
    const [throws, rejects, ...fine] = uploadJobs(5);
    const failures = new Map([
      [throws!.jobId, 'the image decoder crashed (thrown)'],
      [rejects!.jobId, 'the thumbnail store timed out (rejected)'],
    ]);
    const deliveries = new Map<string, boolean[]>();
    const processed: string[] = [];
    // Not async: the first failure is thrown before any promise exists, the second is a rejection.
    const handler: JobHandler = (job, { redelivered }) => {
      deliveries.set(job.jobId, [...(deliveries.get(job.jobId) ?? []), redelivered]);
      if (job.jobId === throws!.jobId) throw new Error(failures.get(throws!.jobId));
      if (job.jobId === rejects!.jobId) return Promise.reject(new Error(failures.get(rejects!.jobId)));
      processed.push(job.jobId);
      return Promise.resolve();
    };
    // Prefetch 1: a failed job that is never settled holds the worker's only slot.
    const { channel } = await worker(rabbit, queue, 'worker-a', handler);
    await sendJobs(rabbit, queue, [throws!, rejects!, ...fine]);

    const tries = (jobId: string) => deliveries.get(jobId)?.length ?? 0;
    const hotLoop = () => tries(throws!.jobId) > 2 || tries(rejects!.jobId) > 2;
    const hotLoopMessage = () => `the handler ran ${tries(throws!.jobId)} times for the job that throws and ` +
      `${tries(rejects!.jobId)} times for the one that rejects: every failure was requeued and came straight ` +
      'back, to fail again, as fast as the broker can deliver it (and, at the head of the queue, ahead of every ' +
      'other job). Requeue a failed job only when message.fields.redelivered is false, then reject it without ' +
      `requeue (${WHERE}/worker.ts)`;
    await vi.waitFor(() => {
      expect(tries(throws!.jobId), `the first job never reached the handler (${WHERE}/worker.ts)`).toBeGreaterThan(0);
      expect(hotLoop(), hotLoopMessage()).toBe(false);
      expect(processed, `after two jobs whose handler failed, the other jobs were never processed: the worker ` +
        'stopped. With prefetch 1, a failed job that is neither acknowledged nor rejected keeps the only slot, and ' +
        `the broker sends nothing more (${WHERE}/worker.ts)`).toEqual(expect.arrayContaining(fine.map((j) => j.jobId)));
    }, WAIT);

    const parked = () => rabbit.readyMessages(deadLetters);
    await eventually(async () => hotLoop() || (await parked()) === 2);
    expect(hotLoop(), hotLoopMessage()).toBe(false);
    for (const job of [throws!, rejects!]) {
      expect(deliveries.get(job.jobId), `job ${job.jobId} failed and was delivered ${tries(job.jobId)} time(s) ` +
        `(redelivered: ${JSON.stringify(deliveries.get(job.jobId))}): a failed job gets one more attempt, requeued ` +
        `and flagged redelivered, and is parked only when that fails too (${WHERE}/worker.ts)`).toEqual([false, true]);
    }

    const stillParked = await parked();
    await closeConsumerChannel(channel);
    const unsettled = await rabbit.readyMessages(queue);
    expect(unsettled, `${unsettled} failed job(s) went back to the queue when the worker disconnected: they were ` +
      'neither acknowledged nor rejected. A handler may throw before it returns a promise, or its promise may ' +
      'reject: call it inside try { await handle(...) } catch, so both end in channel.nack ' +
      `(${WHERE}/worker.ts)`).toBe(0);
    expect(stillParked, `the two jobs whose handler failed twice should be parked in "${deadLetters}", which ` +
      `dead-letters what the worker rejects; it holds ${stillParked}. A failed job that is acknowledged is simply ` +
      `gone: reject it with channel.nack(message, false, false) (${WHERE}/worker.ts)`).toBe(2);

    for (const [jobId, reason] of failures) {
      const reported = errors.some((line) => line.includes(jobId) && line.includes(reason));
      expect(reported, `the handler failed for job ${jobId} with "${reason}", and nothing printed with console.error ` +
        `names both the jobId and the error: report which job failed and why (${WHERE}/worker.ts)`).toBe(true);
    }
  });

  it('a worker has at most prefetch jobs in progress at once, and that many while jobs are waiting', async ({ rabbit }) => {
    const queue = await jobQueue(rabbit);
    const jobs = uploadJobs(9);
    // Queued before the worker starts, so the broker can fill every slot at once.
    await sendJobs(rabbit, queue, jobs);
    let inProgress = 0;
    let most = 0;
    const processed: string[] = [];
    await worker(rabbit, queue, 'worker-a', async (job) => {
      inProgress += 1;
      most = Math.max(most, inProgress);
      await new Promise((resolve) => setTimeout(resolve, 300));
      inProgress -= 1;
      processed.push(job.jobId);
    }, 3);

    await vi.waitFor(() => expect(processed.length, `a worker with prefetch 3 and 300 ms jobs processed ` +
      `${processed.length} of ${jobs.length} jobs (${WHERE}/worker.ts)`).toBe(jobs.length), { timeout: 10_000, interval: 20 });
    expect(most, `with prefetch 3 the worker had ${most} jobs in progress at once. More than 3 means the broker ` +
      'was told a job was done before it was (an ack before the await) or no prefetch was set, so the worker ' +
      `takes on everything the queue holds (${WHERE}/worker.ts)`).toBeLessThanOrEqual(3);
    expect(most, `with prefetch 3 and ${jobs.length} jobs waiting, the worker never had more than ${most} job(s) in ` +
      'progress at once: the prefetch limit is the one the caller asked for, channel.prefetch(options.prefetch), ' +
      `not a number of your own (${WHERE}/worker.ts)`).toBe(3);
    expect([...processed].sort(), `every job should be processed once (${WHERE}/worker.ts)`).toEqual(jobs.map((j) => j.jobId).sort());
  });

  // Restarting the shared broker would break every check running beside this one.
  test('a durable queue with persistent, confirmed jobs loses nothing when the broker restarts', async ({ own, onTestFinished }) => {
    // Starting a broker takes seconds: not worth it while the queue and producer are unwritten.
    const producerProblem = await producerFailure();
    if (producerProblem) throw producerProblem;
    const broker = await own.start('rabbitmq');
    const scope = new RabbitScope(() => broker.url);
    onTestFinished(() => scope.cleanup());
    const queue = scope.queue(uniqueName('uploads'));
    scope.queue(deadLetterQueueName(queue));
    const jobs = uploadJobs(20);
    const producer = await scope.connect();
    await assertJobQueue(await scope.channel(producer), queue);
    await publishJobs(await scope.confirmChannel(producer), queue, jobs);
    await producer.close();

    await broker.restart();

    const waiting = await scope.readyMessages(queue);
    expect(waiting, `the queue "${queue}" did not survive the broker restart: declare it durable ` +
      `(${WHERE}/queue.ts)`).not.toBeUndefined();
    expect(waiting, `publishJobs resolved for ${jobs.length} jobs before the restart, and ${waiting} were left after it. ` +
      'A durable queue keeps only persistent messages: publish with { persistent: true }, and wait for the ' +
      `confirms so that "published" means "on disk" (${WHERE}/producer.ts)`).toBe(jobs.length);

    const processed: string[] = [];
    const consumer = await scope.connect();
    await startWorker(await scope.channel(consumer), queue, async (job) => void processed.push(job.jobId), { prefetch: 5, name: 'worker-a' });
    await vi.waitFor(() => expect(processed.length, 'after the restart, a worker should receive every job').toBe(jobs.length), WAIT);
    expect(processed.sort(), 'every job confirmed before the restart should be processed once after it')
      .toEqual(jobs.map((j) => j.jobId).sort());
  }, 180_000);
});
