import { gradedFolder } from './support/lesson.ts';
import { Redis } from 'ioredis';
import type { TestContext } from 'vitest';
import { describe, expect, it, vi } from './support/fixtures.ts';
import { loadConfig } from '@lesson/02-redis-pubsub/config.ts';
import type { UserEvent, UserSignedUp } from '@lesson/02-redis-pubsub/events.ts';
import { publishUserEvent } from '@lesson/02-redis-pubsub/publisher.ts';
import { subscribeToSignups, subscribeToUserEvents, type Subscription } from '@lesson/02-redis-pubsub/subscriber.ts';
import { UserService } from '@lesson/02-redis-pubsub/user-service.ts';
import { uniqueName } from './support/names.ts';
import type { LessonProcess, ProcessGroup } from './support/processes.ts';
import type { RedisTestKit } from './support/redis.ts';
import { serviceEnv, serviceUrl } from './support/services.ts';

const SLUG = '02-redis-pubsub';
const WHERE = gradedFolder(SLUG);
const READY = /ready: subscribed to /;
/** Redis on the same machine delivers in milliseconds: three seconds is a generous deadline. */
const DELIVERY = { timeout: 3_000, interval: 20 };

/** Closes a learner subscription after the test, pass or fail. */
function closeAfterTest(onTestFinished: TestContext['onTestFinished'], subscription: Subscription): Subscription {
  onTestFinished(() => subscription.close().catch(() => {}));
  return subscription;
}

/** A channel prefix no other test or run shares: every channel and key of the test lives under it. */
function testConfig(redis: RedisTestKit) {
  const config = loadConfig({ ...serviceEnv('redis'), CHANNEL_PREFIX: `${redis.prefix}:` });
  redis.deleteAfterTest(config.authKeysKey, config.auditLogKey);
  return config;
}

type Config = ReturnType<typeof testConfig>;

function startService(procs: ProcessGroup, config: Config, service: 'email' | 'auth' | 'audit', label = `the ${service} service`): LessonProcess {
  return procs.start(SLUG, `${service}-service.ts`, {
    env: { ...serviceEnv('redis'), CHANNEL_PREFIX: config.channelPrefix },
    name: `${label} (${service}-service.ts)`,
  });
}

/** A tsx start can take far longer than a second while a whole suite shares two cores: wait generously. */
const READY_MS = 60_000;

async function ready(service: LessonProcess): Promise<void> {
  await service.waitForOutput(READY, `subscribed and printed its ready line (check subscriber.ts in ${WHERE})`, READY_MS);
}

/** The check's own subscriber: records the raw text of every message on a channel. */
async function rawListener(redis: RedisTestKit, channel: string) {
  const client = redis.connect();
  const messages: string[] = [];
  client.on('message', (from: string, message: string) => from === channel && messages.push(message));
  await client.subscribe(channel);
  return messages;
}

function signedUp(overrides: Partial<UserSignedUp> = {}): UserSignedUp {
  return {
    type: 'user.signed-up',
    userId: uniqueName('user'),
    email: 'grace@example.com',
    name: 'Grace',
    signedUpAt: new Date().toISOString(),
    ...overrides,
  };
}

/**
 * Waits until Redis counts a subscriber on the channel. Requirements other than "a subscription is
 * confirmed before it resolves" use it, so that each one fails for its own reason only.
 */
async function untilSubscribed(redis: RedisTestKit, channel: string, subscribers = 1): Promise<void> {
  const admin = redis.connect();
  await vi.waitFor(async () => {
    const [, count] = (await admin.pubsub('NUMSUB', channel)) as [string, number];
    expect(count, `${count} of ${subscribers} subscriptions on ${channel} became active: subscribe to the channel ` +
      `you were given (${WHERE}/subscriber.ts)`).toBeGreaterThanOrEqual(subscribers);
  }, DELIVERY);
}

/** The same for a pattern (Redis cannot count subscribers per pattern): publish a probe until one arrives. */
async function untilPatternMatches(redis: RedisTestKit, channel: string, probe: UserEvent): Promise<void> {
  const admin = redis.connect();
  await vi.waitFor(async () => {
    expect(await admin.publish(channel, JSON.stringify(probe)), `no pattern subscription ever matched ${channel}: ` +
      `PSUBSCRIBE to the pattern you were given (${WHERE}/subscriber.ts)`).toBeGreaterThan(0);
  }, DELIVERY);
}

const quietly = { onUndelivered: () => {} };

/**
 * Signs a user up and waits until the check's own listener on the signup channel has seen it: the
 * precondition of the requirements about the services, so that a missing publish names user-service.ts.
 */
async function signupHeard(users: UserService, heard: string[], channel: string, input: { email: string; name: string }) {
  const user = await users.signup(input);
  await vi.waitFor(() => {
    expect(heard.some((message) => message.includes(user.id)), `signup(${input.email}) published nothing on ${channel}, ` +
      `so no service can receive it: UserService.signup() must publish the event (${WHERE}/user-service.ts, publisher.ts)`).toBe(true);
  }, DELIVERY);
  return user;
}

describe('02 redis-pubsub', () => {
  it('a signup published by the user service reaches the email, auth and audit services, each in its own process', async ({ redis, procs }) => {
    const config = testConfig(redis);
    const email = startService(procs, config, 'email');
    const auth = startService(procs, config, 'auth');
    const audit = startService(procs, config, 'audit');
    await Promise.all([email, auth, audit].map(ready));
    await untilSubscribed(redis, config.signupChannel, 2);

    const users = new UserService(redis.connect(), { channelPrefix: config.channelPrefix, ...quietly });
    const user = await users.signup({ email: 'Ada@Example.com', name: 'Ada' });

    const received = `received the signup of user ${user.id}. UserService.signup() should publish it on ` +
      `channelFor('user.signed-up') (${WHERE}/user-service.ts, publisher.ts) and each subscription should ` +
      `call its handler (${WHERE}/subscriber.ts)`;
    await Promise.all([
      email.waitForOutput(new RegExp(`welcome email sent to ada@example.com \\(user ${user.id}\\)`), received, 10_000),
      auth.waitForOutput(new RegExp(`key issued for user ${user.id}`), received, 10_000),
      audit.waitForOutput(new RegExp(`recorded user.signed-up for user ${user.id}`), received, 10_000),
    ]);

    const check = redis.connect();
    expect(await check.hget(config.authKeysKey, user.id), `the auth service handled the signup but no key for ` +
      `${user.id} is in the ${config.authKeysKey} hash: its connection must stay free for ordinary commands`).toMatch(/^key_/);
    const auditLog = (await check.lrange(config.auditLogKey, 0, -1)).map((entry) => JSON.parse(entry) as { userId: string });
    expect(auditLog.map((entry) => entry.userId), `the audit service did not write ${user.id} to ${config.auditLogKey}`)
      .toEqual([user.id]);
  });

  it('a signup travels as JSON with a stable shape: { type, userId, email, name, signedUpAt }', async ({ redis }) => {
    const config = testConfig(redis);
    const messages = await rawListener(redis, config.signupChannel);
    const users = new UserService(redis.connect(), { channelPrefix: config.channelPrefix, ...quietly });

    const user = await users.signup({ email: ' Linus@Example.com ', name: ' Linus ' });

    await vi.waitFor(() => {
      expect(messages.length, `nothing arrived on ${config.signupChannel} after signup(): publish the event on ` +
        `channelFor('user.signed-up', prefix) (${WHERE}/user-service.ts, publisher.ts)`).toBeGreaterThan(0);
    }, DELIVERY);
    expect(messages.length, `one signup should publish one message, ${messages.length} arrived (${WHERE}/user-service.ts)`).toBe(1);
    let payload: unknown;
    try {
      payload = JSON.parse(messages[0]!);
    } catch {
      expect.fail(`the message on ${config.signupChannel} is not JSON: ${JSON.stringify(messages[0])}. Other services, ` +
        `maybe in other languages, read it: publish JSON.stringify(event) (${WHERE}/publisher.ts)`);
    }
    expect(payload, 'the payload should be exactly the event: its type and the user it describes, with no ' +
      `extra wrapping, so every subscriber can rely on one shape (${WHERE}/user-service.ts, publisher.ts)`).toEqual({
      type: 'user.signed-up',
      userId: user.id,
      email: 'linus@example.com',
      name: 'Linus',
      signedUpAt: user.createdAt,
    });
  });

  it('a malformed message or a failing handler is reported through onError, and later signups are still handled', async ({ redis, onTestFinished }) => {
    const config = testConfig(redis);
    const seen: string[] = [];
    const errors: Array<{ error: unknown; channel: string }> = [];
    const failing = signedUp({ email: 'fail@example.com' });
    closeAfterTest(onTestFinished, await subscribeToSignups(redis.connect(), config.signupChannel, async (event) => {
      if (event.email === failing.email) throw new Error('mail provider rejected the address');
      seen.push(event.userId);
    }, { onError: (error, { channel }) => void errors.push({ error, channel }) }));
    await untilSubscribed(redis, config.signupChannel);

    const publisher = redis.connect();
    await publisher.publish(config.signupChannel, 'not json at all');
    await publisher.publish(config.signupChannel, JSON.stringify({ type: 'user.signed-up', userId: 'no-email' }));
    await publisher.publish(config.signupChannel, JSON.stringify(failing));
    const good = signedUp();
    await publisher.publish(config.signupChannel, JSON.stringify(good));

    await vi.waitFor(() => {
      expect(seen, 'a valid signup published after a malformed one and a failing one never reached the handler: ' +
        `one bad message must not stop the subscription (${WHERE}/subscriber.ts)`).toEqual([good.userId]);
      expect(errors.length, `expected 3 errors through onError (not JSON, missing fields, handler rejected), got ` +
        `${errors.length}: ${errors.map((e) => String(e.error)).join(' | ') || 'none'}. Parse each message with ` +
        `parseSignedUp and await the handler inside a try/catch that reports to onError (${WHERE}/subscriber.ts)`).toBe(3);
    }, DELIVERY);
    expect(errors.map((e) => e.channel), 'onError should be told which channel the message came from')
      .toEqual([config.signupChannel, config.signupChannel, config.signupChannel]);
  });

  it('the subscriber opens a connection of its own, so the one it was given can still run commands and publish', async ({ redis, onTestFinished }) => {
    const config = testConfig(redis);
    const app = redis.connect();
    const seen: string[] = [];
    const subscription = await subscribeToSignups(app, config.signupChannel, (event) => void seen.push(event.userId));
    closeAfterTest(onTestFinished, subscription);

    const oneConnection = `subscribeToSignups(redis, …) put the connection it was given into subscriber mode. A ` +
      'subscribed connection accepts only SUBSCRIBE, UNSUBSCRIBE, PING and QUIT, so the service could no longer ' +
      `write or publish on it. Subscribe on a connection of its own: redis.duplicate() (${WHERE}/subscriber.ts)`;
    await app.set(`${config.channelPrefix}still-usable`, 'yes').catch((error: unknown) =>
      expect.fail(`${oneConnection}\nRedis said: ${String(error)}`));
    redis.deleteAfterTest(`${config.channelPrefix}still-usable`);
    const event = signedUp();
    const receivers = await app.publish(config.signupChannel, JSON.stringify(event)).catch((error: unknown) =>
      expect.fail(`${oneConnection}\nRedis said: ${String(error)}`));
    expect(receivers, `PUBLISH on ${config.signupChannel} should reach the one subscription`).toBe(1);
    await vi.waitFor(() => expect(seen, 'the subscription did not receive the signup').toEqual([event.userId]), DELIVERY);

    await subscription.close();
    const [, count] = (await app.pubsub('NUMSUB', config.signupChannel)) as [string, number];
    expect(count, `after close() a subscriber is still on ${config.signupChannel}: close() should quit the ` +
      `subscription's own connection (${WHERE}/subscriber.ts)`).toBe(0);
    expect(await app.ping().catch(() => 'closed'), 'close() closed the connection it was given: close only the ' +
      `subscription's own connection, the service still needs the other (${WHERE}/subscriber.ts)`).toBe('PONG');
  });

  it('a handler that throws synchronously is reported through onError, and later signups are still handled', async ({ redis, onTestFinished }) => {
    const config = testConfig(redis);
    const seen: string[] = [];
    const errors: unknown[] = [];
    const boom = new Error('template cache is empty');
    const failing = signedUp({ email: 'sync-fail@example.com' });
    // Not async: this handler throws before it could return a promise.
    closeAfterTest(onTestFinished, await subscribeToSignups(redis.connect(), config.signupChannel, (event) => {
      if (event.userId === failing.userId) throw boom;
      seen.push(event.userId);
    }, { onError: (error) => void errors.push(error) }));
    await untilSubscribed(redis, config.signupChannel);

    const publisher = redis.connect();
    await publisher.publish(config.signupChannel, JSON.stringify(failing));
    const good = signedUp();
    await publisher.publish(config.signupChannel, JSON.stringify(good));

    await vi.waitFor(() => {
      expect(errors, 'a handler threw synchronously and the error never reached onError. A .catch() on what the ' +
        'handler returns only sees rejections: a plain function that throws does so before there is a promise, ' +
        'inside the listener of ioredis. Call the handler inside an async function (or a try) whose catch reports ' +
        `(${WHERE}/subscriber.ts)`).toContain(boom);
      expect(seen, `a valid signup published after the one whose handler threw never reached the handler (${WHERE}/subscriber.ts)`)
        .toEqual([good.userId]);
    }, DELIVERY);
  });

  it('a service whose handler rejects reports it and goes on with later signups, without crashing', async ({ redis, procs }) => {
    const config = testConfig(redis);
    const check = redis.connect();
    // The audit service RPUSHes each event on this key: as a string it makes RPUSH fail with WRONGTYPE.
    await check.set(config.auditLogKey, 'not a list');
    const audit = startService(procs, config, 'audit');
    await ready(audit);
    await untilPatternMatches(redis, `${config.channelPrefix}user.email-verified`, {
      type: 'user.email-verified', userId: 'probe', verifiedAt: new Date().toISOString(),
    });

    const users = new UserService(redis.connect(), { channelPrefix: config.channelPrefix, ...quietly });
    const heard = await rawListener(redis, config.signupChannel);
    const failed = await signupHeard(users, heard, config.signupChannel, { email: 'wrongtype@example.com', name: 'Wrongtype' });
    await audit.waitForOutput(/skipped a message on \S+: WRONGTYPE/, `reported that recording ${failed.id} failed ` +
      '(its RPUSH was rejected with WRONGTYPE). A handler that rejects must be caught by the subscription and ' +
      `passed to onError; an unhandled rejection ends a Node.js process (${WHERE}/subscriber.ts)`, 10_000);

    await check.del(config.auditLogKey);
    const later = await users.signup({ email: 'later@example.com', name: 'Later' });
    await audit.waitForOutput(new RegExp(`recorded user.signed-up for user ${later.id}`), `handled the signup of ${later.id}, ` +
      `published after one whose handler failed: one failure must not end the subscription (${WHERE}/subscriber.ts)`, 10_000);
    expect(audit.running, `the audit service exited after a handler failed:\n${audit.output()}`).toBe(true);
  });

  it('close() leaves no connection of the subscription open on the server (CLIENT LIST)', async ({ redis, onTestFinished }) => {
    const config = testConfig(redis);
    // The service's connection gets a name of its own; redis.duplicate() copies it to the subscription's connection.
    const name = uniqueName('pubsub-close');
    const app = new Redis(serviceUrl('redis'), { connectionName: name, maxRetriesPerRequest: 3 });
    app.on('error', () => {});
    onTestFinished(() => app.quit().then(() => {}, () => app.disconnect()));
    await app.ping();
    const admin = redis.connect();
    const named = async () => String(await admin.client('LIST')).split('\n').filter((line) => line.includes(` name=${name} `));

    const signups = closeAfterTest(onTestFinished, await subscribeToSignups(app, config.signupChannel, () => {}));
    const userEvents = closeAfterTest(onTestFinished, await subscribeToUserEvents(app, config.userEventsPattern, () => {}));
    const open = await named();
    expect(open.length, `Redis lists ${open.length} connections named ${name} (the service's own and the subscriptions'), ` +
      'expected 3: each subscription should run on a connection of its own, made with redis.duplicate() from the one ' +
      `it was given (${WHERE}/subscriber.ts)`).toBe(3);

    await signups.close();
    await userEvents.close();
    await vi.waitFor(async () => {
      const left = await named();
      expect(left.length, `after both close() calls Redis still lists ${left.length - 1} subscription connection(s) ` +
        `(${left.map((line) => /\bcmd=(\S+)/.exec(line)?.[1] ?? '?').join(', ')}). Unsubscribing is not closing: the ` +
        'connection stays open on the server, one more for every subscription a service ever closed. close() must ' +
        `quit the subscription's own connection (${WHERE}/subscriber.ts)`).toBe(1);
    }, DELIVERY);
    expect(await app.ping().catch(() => 'closed'), 'close() closed the connection it was given: close only the ' +
      `subscription's own connection (${WHERE}/subscriber.ts)`).toBe('PONG');
  });

  it('a subscription is confirmed by Redis before it resolves, so a message published right after is received', async ({ redis, onTestFinished }) => {
    const config = testConfig(redis);
    const publisher = redis.connect();
    await publisher.ping();
    const signups: string[] = [];
    const userEvents: string[] = [];

    closeAfterTest(onTestFinished, await subscribeToSignups(redis.connect(), config.signupChannel, (e) => void signups.push(e.userId)));
    const first = signedUp();
    const signupReceivers = await publisher.publish(config.signupChannel, JSON.stringify(first));

    closeAfterTest(onTestFinished, await subscribeToUserEvents(redis.connect(), config.userEventsPattern, (e) => void userEvents.push(e.userId)));
    const second: UserEvent = { type: 'user.deleted', userId: uniqueName('user'), deletedAt: new Date().toISOString() };
    const patternReceivers = await publisher.publish(`${config.channelPrefix}user.deleted`, JSON.stringify(second));

    const early = (fn: string, receivers: number) => `a message published as soon as ${fn}() resolved reached ` +
      `${receivers} subscribers: the function returned before Redis had confirmed the subscription, and Redis does ` +
      'not keep a message for a subscription that is not active yet, it drops it. Await subscriber.subscribe(...) / ' +
      `psubscribe(...) before resolving (${WHERE}/subscriber.ts)`;
    expect(signupReceivers, early('subscribeToSignups', signupReceivers)).toBe(1);
    expect(patternReceivers, early('subscribeToUserEvents', patternReceivers)).toBe(1);
    await vi.waitFor(() => {
      expect(signups, 'the signup reached the subscription but not its handler').toEqual([first.userId]);
      expect(userEvents, 'the event reached the pattern subscription but not its handler').toEqual([second.userId]);
    }, DELIVERY);
  });

  it('a pattern subscription on user.* receives every user event with its channel, and nothing else', async ({ redis, onTestFinished }) => {
    const config = testConfig(redis);
    const seen: Array<{ type: string; userId: string; channel: string }> = [];
    closeAfterTest(onTestFinished, await subscribeToUserEvents(redis.connect(), config.userEventsPattern, (event, channel) =>
      void seen.push({ type: event.type, userId: event.userId, channel })));
    const at = new Date().toISOString();
    await untilPatternMatches(redis, `${config.channelPrefix}user.email-verified`, { type: 'user.email-verified', userId: 'probe', verifiedAt: at });

    const app = redis.connect();
    const userId = uniqueName('user');
    const events: UserEvent[] = [
      { type: 'user.signed-up', userId, email: 'hedy@example.com', name: 'Hedy', signedUpAt: at },
      { type: 'user.email-verified', userId, verifiedAt: at },
      { type: 'user.deleted', userId, deletedAt: at },
    ];
    for (const event of events) {
      const receivers = await publishUserEvent(app, event, { channelPrefix: config.channelPrefix });
      expect(receivers, `${event.type} published on ${config.channelPrefix}${event.type} reached ${receivers} ` +
        `subscriptions instead of 1: PSUBSCRIBE to the pattern ${config.userEventsPattern} (${WHERE}/subscriber.ts)`).toBe(1);
    }
    const orders = await app.publish(`${config.channelPrefix}order.placed`, JSON.stringify({ type: 'order.placed' }));
    expect(orders, `an order.placed message reached the user-event subscription: subscribe to the pattern ` +
      `you were given (${config.userEventsPattern}), not to everything (${WHERE}/subscriber.ts)`).toBe(0);

    await vi.waitFor(() => {
      expect(seen.filter((entry) => entry.userId !== 'probe'), 'the handler should get each user event with the channel it arrived on, in publish order ' +
        `(the pmessage listener receives pattern, channel, message) (${WHERE}/subscriber.ts)`).toEqual(
        events.map((event) => ({ type: event.type, userId, channel: `${config.channelPrefix}${event.type}` })),
      );
    }, DELIVERY);
  });

  it('a service that is offline when a signup is published never receives it, not even after it restarts (at-most-once)', async ({ redis, procs }) => {
    const config = testConfig(redis);
    const users = new UserService(redis.connect(), { channelPrefix: config.channelPrefix, ...quietly });
    const heard = await rawListener(redis, config.signupChannel);
    let email = startService(procs, config, 'email');
    await ready(email);
    await untilSubscribed(redis, config.signupChannel, 2);
    const before = await signupHeard(users, heard, config.signupChannel, { email: 'before@example.com', name: 'Before' });
    await email.waitForOutput(new RegExp(before.id), `received the signup of ${before.id}`, 10_000);

    await email.kill('SIGKILL');
    const during = await users.signup({ email: 'during@example.com', name: 'During' });

    email = startService(procs, config, 'email', 'the restarted email service');
    await ready(email);
    await untilSubscribed(redis, config.signupChannel, 2);
    const after = await users.signup({ email: 'after@example.com', name: 'After' });
    await email.waitForOutput(new RegExp(after.id), `received the signup of ${after.id}, published after it restarted`, 10_000);

    // Redis delivers in publish order: had the missed signup been kept somewhere, it would have come first.
    expect(email.output(), `the restarted email service received ${during.id}, published while it was down. Redis ` +
      'pub/sub delivers a message only to the connections subscribed at that moment and keeps nothing, so a service ' +
      'that was down cannot catch up from Redis. Do not build a replay around pub/sub; lesson 03 uses a stream.')
      .not.toContain(during.id);
  });

  it('signup reports a signup that reached no subscriber through onUndelivered, since Redis will never deliver it later', async ({ redis }) => {
    const config = testConfig(redis);
    const undelivered: UserSignedUp[] = [];
    const users = new UserService(redis.connect(), {
      channelPrefix: config.channelPrefix,
      onUndelivered: (event) => void undelivered.push(event),
    });

    const lonely = await users.signup({ email: 'lonely@example.com', name: 'Lonely' });
    expect(undelivered.map((event) => event.userId), `signup(${lonely.email}) was published while no service was ` +
      `subscribed to ${config.signupChannel}: PUBLISH returned 0 and Redis dropped the message on the spot. Nothing ` +
      'delivers it when a service comes back, so signup() must notice and report it: check the number ' +
      `publishUserEvent resolves with and call onUndelivered(event) when it is 0 (${WHERE}/user-service.ts)`)
      .toEqual([lonely.id]);

    await rawListener(redis, config.signupChannel);
    const heard = await users.signup({ email: 'heard@example.com', name: 'Heard' });
    expect(undelivered.map((event) => event.userId), `signup(${heard.email}) reached a subscriber but was reported ` +
      `as undelivered: call onUndelivered only when no subscriber received it (${WHERE}/user-service.ts)`)
      .toEqual([lonely.id]);
  });
});
