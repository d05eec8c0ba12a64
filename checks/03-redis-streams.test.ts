import { gradedFolder } from './support/lesson.ts';
import { describe, expect, it, vi } from './support/fixtures.ts';
import type { UserSignedUp } from '@lesson/03-redis-streams/events.ts';
import { appendSignup } from '@lesson/03-redis-streams/producer.ts';
import { uniqueName } from './support/names.ts';
import type { LessonProcess, ProcessGroup } from './support/processes.ts';
import { pendingEntries, readStream, waitForOutputs, type RedisTestKit } from './support/redis.ts';
import { serviceEnv } from './support/services.ts';

const SLUG = '03-redis-streams';
const WHERE = gradedFolder(SLUG);
/** Generous for work that takes milliseconds on an idle machine: checks may share two busy cores. */
const DEADLINE = { timeout: 10_000, interval: 25 };

interface WorkerSettings {
  name: string;
  /** How long the simulated mail provider takes per email. */
  delayMs?: number;
  failFor?: string[];
  claimMinIdleMs?: number;
  maxDeliveries?: number;
  batchSize?: number;
}

/**
 * Everything one requirement uses: a stream, group and dead-letter stream no other test or run
 * shares, its connections, and the worker processes it starts. Torn down when the test finishes, so
 * the requirements can run side by side.
 */
class Scenario {
  readonly stream: string;
  readonly group = uniqueName('email-service');
  readonly deadLetters: string;

  /** The test's fixtures: its keys live under the redis fixture's prefix, its workers in procs. */
  constructor(readonly redis: RedisTestKit, private readonly procs: ProcessGroup) {
    this.stream = redis.key('signups');
    this.deadLetters = `${this.stream}:dead`;
  }

  /** Starts email-worker.ts as its own process: one consumer of the group, named `name`. */
  startWorker(settings: WorkerSettings, label = `the consumer ${settings.name}`): LessonProcess {
    return this.procs.start(SLUG, 'email-worker.ts', {
      name: `${label} (email-worker.ts)`,
      env: {
        ...serviceEnv('redis'),
        SIGNUP_STREAM: this.stream,
        CONSUMER_GROUP: this.group,
        CONSUMER_NAME: settings.name,
        DEAD_LETTER_STREAM: this.deadLetters,
        BATCH_SIZE: String(settings.batchSize ?? 10),
        BLOCK_MS: '100',
        CLAIM_INTERVAL_MS: '100',
        CLAIM_MIN_IDLE_MS: String(settings.claimMinIdleMs ?? 60_000),
        MAX_DELIVERIES: String(settings.maxDeliveries ?? 5),
        MAILER_DELAY_MS: String(settings.delayMs ?? 20),
        MAILER_FAILS_FOR: (settings.failFor ?? []).join(','),
      },
    });
  }

  /** Appends a signup the way the producer does (type + JSON data), so consumer checks do not depend on producer.ts. */
  async append(event: UserSignedUp): Promise<string> {
    return (await this.redis.connect().xadd(this.stream, '*', 'type', 'user.signed-up', 'data', JSON.stringify(event)))!;
  }

  async untilNothingPending(why: string): Promise<void> {
    const check = this.redis.connect();
    await vi.waitFor(async () => {
      const pending = await pendingEntries(check, this.stream, this.group);
      expect(pending.map((p) => `${p.id} (held by ${p.consumer}, delivered ${p.deliveries}×)`), why).toEqual([]);
    }, DEADLINE);
  }

  /**
   * Waits (briefly) until each named consumer is blocked in XREADGROUP, waiting for new entries, so
   * that entries appended next are dealt out between them. The worker names its connection
   * "<group>:<consumer>". A consumer that never blocks is not failed here; the requirement decides.
   */
  async untilWaitingForEntries(consumers: string[]): Promise<void> {
    const check = this.redis.connect();
    await vi.waitFor(async () => {
      const clients = String(await check.client('LIST')).split('\n');
      for (const consumer of consumers) {
        const waiting = clients.some((line) => line.includes(` name=${this.group}:${consumer} `) &&
          / flags=\S*b/.test(line) && line.includes(' cmd=xreadgroup'));
        if (!waiting) throw new Error(`${consumer} is not waiting in XREADGROUP`);
      }
    }, { timeout: 3_000, interval: 10 }).catch(() => {});
  }
}

/**
 * A tsx start takes a second on an idle machine and far longer while a whole suite shares two cores:
 * the wait is generous, and it ends at once when the worker exits or reports a TODO.
 */
const READY_MS = 60_000;

async function ready(worker: LessonProcess): Promise<void> {
  await worker.waitForOutput(/ready: reading /, `joined its consumer group and printed its ready line (check start() in ${WHERE}/consumer.ts)`, READY_MS);
}

const processing = (name: string, id: string) => new RegExp(`\\[${name}\\] processing ${id} `);
const done = (name: string, id: string) => new RegExp(`\\[${name}\\] done ${id}$`, 'm');

function count(text: string, pattern: RegExp): number {
  return text.match(new RegExp(pattern.source, 'gm'))?.length ?? 0;
}

function signup(email: string): UserSignedUp {
  return { userId: uniqueName('user'), email, name: email.split('@')[0]!, signedUpAt: new Date().toISOString() };
}

// The requirements run side by side: most of their time is spent waiting for processes and idle times.
describe.concurrent('03 redis-streams', () => {
  it('appendSignup adds the signup as one JSON entry with XADD and caps the stream near maxLength', async ({ expect, redis, procs }) => {
    const n = new Scenario(redis, procs);
    const app = n.redis.connect();
    const first = signup('ada@example.com');
    const id = await appendSignup(app, n.stream, first, { maxLength: 50 });

    const entries = await readStream(app, n.stream);
    expect(entries.map((e) => e.id), `appendSignup should XADD one entry and resolve with its ID (${WHERE}/producer.ts)`).toEqual([id]);
    expect(entries[0]!.fields.type, 'the entry needs a type field: "user.signed-up"').toBe('user.signed-up');
    let data: unknown;
    try {
      data = JSON.parse(entries[0]!.fields.data ?? '');
    } catch {
      expect.fail(`the entry's data field should be the event as JSON (toEntryFields in events.ts builds it), got ` +
        `${JSON.stringify(entries[0]!.fields)} (${WHERE}/producer.ts)`);
    }
    expect(data, 'the data field should be exactly the event').toEqual(first);

    let last = first;
    for (let i = 1; i < 300; i++) {
      last = signup(`user${i}@example.com`);
      await appendSignup(app, n.stream, last, { maxLength: 50 });
    }
    const length = await app.xlen(n.stream);
    // MAXLEN ~ trims whole internal nodes (100 entries each by default), so up to 149 entries may stay.
    expect(length, `after 300 appends with maxLength 50 the stream holds ${length} entries. A log that is never ` +
      'trimmed grows until Redis runs out of memory: pass MAXLEN to XADD (MAXLEN ~ 50 is fine, it trims in ' +
      `cheap whole blocks) (${WHERE}/producer.ts)`).toBeLessThan(150);
    expect(length, `the stream holds only ${length} entries: the cap is a minimum to keep, trim no further`).toBeGreaterThanOrEqual(50);
    const newest = (await readStream(app, n.stream)).at(-1)!;
    expect(JSON.parse(newest.fields.data ?? 'null'), 'the newest entry should be the last signup appended').toEqual(last);
  });

  it('two consumers in one group split the entries: each is handled exactly once and acknowledged', async ({ expect, redis, procs }) => {
    const n = new Scenario(redis, procs);
    const a = n.startWorker({ name: 'email-a', delayMs: 100, batchSize: 1 });
    const b = n.startWorker({ name: 'email-b', delayMs: 100, batchSize: 1 });
    await Promise.all([ready(a), ready(b)]);

    await n.untilWaitingForEntries(['email-a', 'email-b']);
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await n.append(signup(`split${i}@example.com`)));

    const unfinished = () => ids.filter((id) => !done('email-a', id).test(a.output()) && !done('email-b', id).test(b.output()));
    await waitForOutputs([a, b], () => unfinished().length === 0, () => `no consumer finished these entries: ` +
      `${unfinished().join(', ')}. Each consumer should read new entries with XREADGROUP GROUP <group> <its own ` +
      `name> … STREAMS <stream> '>' (${WHERE}/consumer.ts readNew)`);

    for (const id of ids) {
      const times = count(a.output(), processing('email-a', id)) + count(b.output(), processing('email-b', id));
      expect(times, `entry ${id} was handled ${times} times: consumers of one group share the work, each entry goes ` +
        `to one of them. XREAD (without GROUP) gives every reader everything (${WHERE}/consumer.ts)`).toBe(1);
    }
    const byA = ids.filter((id) => processing('email-a', id).test(a.output())).length;
    expect(Math.min(byA, ids.length - byA), `one consumer handled all ${ids.length} entries (email-a: ${byA}, ` +
      `email-b: ${ids.length - byA}): both should read as members of the same group, each under its own consumer ` +
      `name (${WHERE}/consumer.ts)`).toBeGreaterThan(0);
    await n.untilNothingPending('every entry was handled but some are still pending: XACK each entry once its ' +
      `handler has finished, or the group thinks the work was never done (${WHERE}/consumer.ts handle)`);
  });

  it('joining the group ignores only BUSYGROUP: a stream key that holds another type stops the consumer with Redis\'s error', async ({ expect, redis, procs }) => {
    const n = new Scenario(redis, procs);
    // Someone else's data under the stream's name: XGROUP CREATE answers WRONGTYPE, not BUSYGROUP.
    await n.redis.connect().set(n.stream, 'a plain string, not a stream');
    const worker = n.startWorker({ name: 'email-a' });
    const isReady = () => / ready: reading /.test(worker.output());
    await vi.waitFor(() => {
      if (worker.running && !isReady()) throw new Error('still starting');
    }, { timeout: READY_MS, interval: 50 });

    expect(isReady(), `XGROUP CREATE failed with WRONGTYPE (${n.stream} holds a string), yet the consumer said it was ready ` +
      'and went on reading a stream that is not there. Only BUSYGROUP (the group exists already) is safe to ignore: ' +
      `rethrow every other error, so the service fails at start instead of failing on every read (${WHERE}/consumer.ts ensureGroup)`)
      .toBe(false);
    const exit = await worker.exited;
    expect(exit.code, `the consumer should exit with an error when it cannot join its group; it exited with ${JSON.stringify(exit)}`)
      .not.toBe(0);
    expect(worker.output(), `the consumer should stop with Redis's own error (WRONGTYPE), so the operator knows why (${WHERE}/consumer.ts ensureGroup)`)
      .toMatch(/WRONGTYPE/);
  });

  it('an entry is acknowledged only after it is processed: a consumer killed mid-work leaves it pending', async ({ expect, redis, procs }) => {
    const n = new Scenario(redis, procs);
    const a = n.startWorker({ name: 'email-a', delayMs: 60_000 });
    await ready(a);
    const id = await n.append(signup('slow@example.com'));
    await a.waitForOutput(processing('email-a', id), `started on entry ${id}`);

    await a.kill('SIGKILL');

    const pending = await pendingEntries(n.redis.connect(), n.stream, n.group);
    expect(pending.map((p) => ({ id: p.id, consumer: p.consumer })), `email-a was killed while sending the email for ` +
      `${id}, yet the entry is no longer pending: it was acknowledged before the work was done, so the crash lost ` +
      'it and no consumer will ever retry it. XACK only after the handler has finished ' +
      `(${WHERE}/consumer.ts handle)`).toEqual([{ id, consumer: 'email-a' }]);
  });

  it("a restarted consumer first handles its own pending entries (ID 0), then new ones ('>')", async ({ expect, redis, procs }) => {
    const n = new Scenario(redis, procs);
    const before = n.startWorker({ name: 'email-1', delayMs: 60_000 });
    await ready(before);
    const interrupted = await n.append(signup('interrupted@example.com'));
    await before.waitForOutput(processing('email-1', interrupted), `started on entry ${interrupted}`);
    await before.kill('SIGKILL');
    const newer = await n.append(signup('newer@example.com'));

    const after = n.startWorker({ name: 'email-1' }, 'the restarted consumer email-1');
    await ready(after);
    await after.waitForOutput(done('email-1', newer), `handled ${newer}, appended while it was down`);

    const output = after.output();
    const own = output.search(processing('email-1', interrupted));
    expect(own, `the restarted email-1 never handled ${interrupted}, which it was working on when it crashed and which ` +
      "is still pending under its name. Reading with '>' returns only entries never delivered to anyone: on start, " +
      `read your own pending entries with ID 0 first (${WHERE}/consumer.ts recoverOwnPending)`).toBeGreaterThanOrEqual(0);
    expect(own, `the restarted email-1 handled the new entry ${newer} before its own pending ${interrupted}: drain ` +
      `your pending entries (ID 0) before reading new ones ('>') (${WHERE}/consumer.ts)`).toBeLessThan(output.search(processing('email-1', newer)));
    await n.untilNothingPending(`the restarted email-1 handled its pending entry but did not acknowledge it (${WHERE}/consumer.ts)`);
  });

  it('a restarted consumer drains its whole pending list, one read after another, before it reads new entries', async ({ expect, redis, procs }) => {
    const n = new Scenario(redis, procs);
    const check = n.redis.connect();
    // The group exists before any worker starts, so a worker must join it as it is (XGROUP CREATE
    // answers BUSYGROUP), and the three entries wait for its first read, which takes them all.
    await check.xgroup('CREATE', n.stream, n.group, '$', 'MKSTREAM');
    const interrupted: string[] = [];
    for (let i = 0; i < 3; i++) interrupted.push(await n.append(signup(`pending${i}@example.com`)));
    const before = n.startWorker({ name: 'email-1', delayMs: 60_000, batchSize: 3 });
    await ready(before);
    await before.waitForOutput(processing('email-1', interrupted[0]!), `started on entry ${interrupted[0]} ` +
      `(the group already existed: ignore XGROUP CREATE's BUSYGROUP error and read as a member, ${WHERE}/consumer.ts)`);
    await before.kill('SIGKILL');
    const pending = await pendingEntries(check, n.stream, n.group);
    expect(pending.map((p) => p.id), `email-1 (BATCH_SIZE 3) was killed while sending the first of three waiting entries; ` +
      `all three should be pending under its name, delivered by one XREADGROUP … COUNT 3 (${WHERE}/consumer.ts readNew)`)
      .toEqual(interrupted);

    const newer = await n.append(signup('newer@example.com'));
    const after = n.startWorker({ name: 'email-1', batchSize: 1 }, 'the restarted consumer email-1');
    await ready(after);
    await after.waitForOutput(done('email-1', newer), `handled ${newer}, appended while it was down`);

    const output = after.output();
    const at = (id: string) => output.search(processing('email-1', id));
    const late = interrupted.filter((id) => at(id) < 0 || at(id) > at(newer));
    expect(late, `the restarted email-1 reads one entry at a time (BATCH_SIZE 1) and handled the new entry ${newer} ` +
      `before its own pending ${late.join(', ')}. One read of ID 0 returns at most COUNT entries: read again after the ` +
      "last ID you got, until a read returns nothing, and only then read '>' " +
      `(${WHERE}/consumer.ts recoverOwnPending)`).toEqual([]);
    await n.untilNothingPending(`the restarted email-1 handled its pending entries but did not acknowledge them (${WHERE}/consumer.ts)`);
  });

  it('a handler that rejects is reported with its entry ID, stays pending, and the entries read with it are handled on their first delivery', async ({ expect, redis, procs }) => {
    const n = new Scenario(redis, procs);
    const check = n.redis.connect();
    await check.xgroup('CREATE', n.stream, n.group, '$', 'MKSTREAM');
    const failingId = await n.append(signup('rejected@example.com'));
    const nextIds = [await n.append(signup('next1@example.com')), await n.append(signup('next2@example.com'))];
    // The three entries wait for the worker's first read; nothing is claimed during the test (60 s idle time).
    const worker = n.startWorker({ name: 'email-a', failFor: ['rejected@example.com'] });
    await ready(worker);

    for (const id of nextIds) {
      await worker.waitForOutput(new RegExp(`\\[email-a\\] processing ${id} \\(delivery 1\\)`), `handled ${id} on its first ` +
        `delivery, read in the same batch as ${failingId}, whose handler rejected. A failing handler must not end the ` +
        `batch: catch its error in handle, report it and go on with the next entry (${WHERE}/consumer.ts handle)`, 10_000);
    }
    await worker.waitForOutput(new RegExp(`\\[email-a\\] failed ${failingId}: `), `reported the failure of ${failingId} ` +
      `with its entry ID: pass the handler's error to onError(error, { entryId }) (${WHERE}/consumer.ts handle)`, 10_000);
    await vi.waitFor(async () => {
      const pending = await pendingEntries(check, n.stream, n.group);
      expect(pending.map((p) => p.id), `only the failed ${failingId} should still be pending: it must not be ` +
        'acknowledged, so that it is retried after claimMinIdleMs, while the others are acknowledged once handled ' +
        `(${WHERE}/consumer.ts handle)`).toEqual([failingId]);
    }, DEADLINE);
    expect(worker.running, `the consumer process exited after a handler failed:\n${worker.output()}`).toBe(true);
  });

  it('a worker stopped with SIGTERM mid-entry finishes it and acknowledges it before it exits', async ({ expect, redis, procs }) => {
    const n = new Scenario(redis, procs);
    const worker = n.startWorker({ name: 'email-a', delayMs: 1_500 });
    await ready(worker);
    const id = await n.append(signup('shutdown@example.com'));
    await worker.waitForOutput(processing('email-a', id), `started on entry ${id}`);

    const exit = await worker.stop(20_000);
    expect(done('email-a', id).test(worker.output()), `email-a was asked to stop (SIGTERM) while sending the email for ` +
      `${id} and exited without finishing it. stop() waits for the read loop, so the loop must await the entries it ` +
      `read (await this.handleAll(...), never void) (${WHERE}/consumer.ts readNew)\n${worker.output()}`).toBe(true);
    expect(exit.code, `email-a did not exit cleanly after SIGTERM (${JSON.stringify(exit)}):\n${worker.output()}`).toBe(0);
    const pending = await pendingEntries(n.redis.connect(), n.stream, n.group);
    expect(pending.map((p) => p.id), `email-a finished ${id} before it exited but never acknowledged it: the next ` +
      `consumer will send that email again (${WHERE}/consumer.ts handle)`).toEqual([]);
  });

  it('entries left pending by a crashed consumer are claimed by a live one with XAUTOCLAIM once idle long enough', async ({ redis, procs }) => {
    const n = new Scenario(redis, procs);
    const crashed = n.startWorker({ name: 'email-a', delayMs: 60_000 });
    await ready(crashed);
    const id = await n.append(signup('orphan@example.com'));
    await crashed.waitForOutput(processing('email-a', id), `started on entry ${id}`);
    await crashed.kill('SIGKILL');

    const live = n.startWorker({ name: 'email-b', claimMinIdleMs: 600 });
    await ready(live);
    await live.waitForOutput(processing('email-b', id), `took over entry ${id}, left pending by the crashed email-a. ` +
      'Every claimIntervalMs, a consumer should XAUTOCLAIM the entries that have been pending longer than ' +
      `claimMinIdleMs, whoever holds them, and handle them (${WHERE}/consumer.ts claimAbandoned)`, 8_000);
    await live.waitForOutput(done('email-b', id), `finished entry ${id}`);
    await n.untilNothingPending(`email-b handled the claimed entry but did not acknowledge it (${WHERE}/consumer.ts)`);
  });

  it('an entry a live consumer is still working on is not claimed before the minimum idle time', async ({ expect, redis, procs }) => {
    const n = new Scenario(redis, procs);
    const settings = { delayMs: 1_000, claimMinIdleMs: 5_000 };
    const a = n.startWorker({ name: 'email-a', ...settings });
    const b = n.startWorker({ name: 'email-b', ...settings });
    await Promise.all([ready(a), ready(b)]);

    const id = await n.append(signup('slow-but-alive@example.com'));
    await waitForOutputs([a, b], () => done('email-a', id).test(a.output()) || done('email-b', id).test(b.output()),
      () => `no consumer finished entry ${id} (${WHERE}/consumer.ts readNew)`);

    const handledBy = [
      ...(processing('email-a', id).test(a.output()) ? ['email-a'] : []),
      ...(processing('email-b', id).test(b.output()) ? ['email-b'] : []),
    ];
    expect(handledBy, `entry ${id} was handled by ${handledBy.join(' and ')}. Sending its email takes 1 s and ` +
      'the claim minimum idle time is 5 s, yet the other consumer claimed it while the first was still working: ' +
      'the welcome email went out twice. Pass claimMinIdleMs as XAUTOCLAIM\'s min-idle-time; it is what tells a ' +
      `crashed consumer from a slow one (${WHERE}/consumer.ts claimAbandoned)`).toHaveLength(1);
  });

  it('an entry that keeps failing goes to the dead-letter stream after maxDeliveries attempts instead of looping', async ({ expect, redis, procs }) => {
    const n = new Scenario(redis, procs);
    const worker = n.startWorker({ name: 'email-a', failFor: ['bounce@example.com'], maxDeliveries: 2, claimMinIdleMs: 500 });
    await ready(worker);
    const poison = signup('bounce@example.com');
    const poisonId = await n.append(poison);
    const healthyId = await n.append(signup('healthy@example.com'));

    await worker.waitForOutput(done('email-a', healthyId), `handled ${healthyId} while ${poisonId} kept failing ` +
      `(a failing entry must not block the others)`);
    const check = n.redis.connect();
    await vi.waitFor(async () => {
      expect((await readStream(check, n.deadLetters)).length, `${poisonId} fails every time, yet nothing reached the ` +
        `dead-letter stream ${n.deadLetters}. Leave a failed entry pending (it is claimed again after ` +
        'claimMinIdleMs, which counts a delivery), and when an entry has been delivered more than maxDeliveries ' +
        `times, XADD it to the dead-letter stream and XACK it (${WHERE}/consumer.ts handle, deadLetter)`).toBeGreaterThan(0);
    }, DEADLINE);
    await n.untilNothingPending(`${poisonId} was dead-lettered but is still pending in the group: XACK it in the same ` +
      `MULTI as the XADD to the dead-letter stream, or it will be claimed and dead-lettered again (${WHERE}/consumer.ts deadLetter)`);

    const attempts = count(worker.output(), processing('email-a', poisonId));
    expect(attempts, `the handler ran ${attempts} times for ${poisonId}; with maxDeliveries 2 it should run exactly ` +
      `twice and then the entry should be set aside (${WHERE}/consumer.ts handle)`).toBe(2);
    const dead = await readStream(check, n.deadLetters);
    expect(dead.length, `${poisonId} was dead-lettered ${dead.length} times`).toBe(1);
    const fields = dead[0]!.fields;
    expect(fields.originalId, 'the dead-letter entry should name the original entry in an originalId field').toBe(poisonId);
    expect(fields.data, 'the dead-letter entry should keep the original data field, so it can be inspected and replayed')
      .toBe(JSON.stringify(poison));
    expect(Number(fields.deliveries), 'the dead-letter entry should record how often it was delivered (deliveries field)')
      .toBeGreaterThanOrEqual(2);
    expect(fields.reason ?? '', 'the dead-letter entry should say why it was set aside (reason field)').not.toBe('');
    expect({ stream: fields.stream, group: fields.group }, 'the dead-letter entry should say where it came from, in a ' +
      `stream and a group field, so it can be replayed into the right place (${WHERE}/consumer.ts deadLetter)`)
      .toEqual({ stream: n.stream, group: n.group });
    expect(worker.output(), `${poisonId} was set aside without a word: call onDeadLetter({ id, deliveries, reason }) once it ` +
      `is in the dead-letter stream, so someone hears of it (${WHERE}/consumer.ts deadLetter)`)
      .toMatch(new RegExp(`\\[email-a\\] dead-lettered ${poisonId} after \\d+ deliveries: \\S`));
  });

  it('a malformed entry is dead-lettered at once with its reason, and the consumer keeps going', async ({ expect, redis, procs }) => {
    const n = new Scenario(redis, procs);
    const worker = n.startWorker({ name: 'email-a', claimMinIdleMs: 500 });
    await ready(worker);
    const check = n.redis.connect();
    const notJson = (await check.xadd(n.stream, '*', 'type', 'user.signed-up', 'data', '{not json'))!;
    const noData = (await check.xadd(n.stream, '*', 'type', 'user.signed-up'))!;
    const healthyId = await n.append(signup('after-the-bad-ones@example.com'));

    await worker.waitForOutput(done('email-a', healthyId), `handled ${healthyId}, appended after two malformed entries`);
    await vi.waitFor(async () => {
      const dead = await readStream(check, n.deadLetters);
      expect(dead.map((entry) => entry.fields.originalId), 'malformed entries cannot be fixed by a retry: parse with ' +
        'parseSignupEntry and dead-letter what it rejects right away, with its message as the reason ' +
        `(${WHERE}/consumer.ts handle)`).toEqual([notJson, noData]);
      for (const entry of dead) {
        expect(entry.fields.deliveries, `${entry.fields.originalId} was retried before it was dead-lettered`).toBe('1');
        expect(entry.fields.reason ?? '', 'the dead-letter entry should say what is wrong (reason field)').not.toBe('');
      }
    }, DEADLINE);
    await n.untilNothingPending(`the malformed entries are still pending: acknowledge them when you dead-letter them (${WHERE}/consumer.ts)`);
    expect(worker.running, `the consumer process exited on a malformed entry:\n${worker.output()}`).toBe(true);
  });
});
