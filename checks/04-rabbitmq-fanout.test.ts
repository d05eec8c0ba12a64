import { gradedFolder } from './support/lesson.ts';
import { randomUUID } from 'node:crypto';
import type { ChannelModel } from 'amqplib';
import { describe, expect, it, vi } from './support/fixtures.ts';
import type { UserSignedUp } from '@lesson/04-rabbitmq-fanout/events.ts';
import { startLiveFeed } from '@lesson/04-rabbitmq-fanout/live-feed.ts';
import { publishSignup } from '@lesson/04-rabbitmq-fanout/publisher.ts';
import { startSignupSubscriber, type SignupHandler } from '@lesson/04-rabbitmq-fanout/subscriber.ts';
import { assertSignupExchange, deadLetterQueueName, serviceQueueName } from '@lesson/04-rabbitmq-fanout/topology.ts';
import { recordConsoleErrors } from './support/console.ts';
import { eventually } from './support/polling.ts';
import { uniqueName } from './support/names.ts';
import { brokerReason, CLASSIC_QUEUE, closeConsumerChannel, isAmqpError, type RabbitScope } from './support/rabbitmq.ts';
import { serviceEnv } from './support/services.ts';

const SLUG = '04-rabbitmq-fanout';
const WHERE = gradedFolder(SLUG);
const SERVICES = ['email', 'auth-keys', 'audit'] as const;
const WAIT = { timeout: 5_000, interval: 20 };

/** What a service's queue should look like to the broker: every setting assertServiceQueue states. */
function serviceQueueSettings(queue: string) {
  return {
    durable: true,
    exclusive: false,
    autoDelete: false,
    arguments: { ...CLASSIC_QUEUE, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': deadLetterQueueName(queue) },
  };
}

/**
 * How the broker sees a service's queue, asked on a connection of the check's own (never the
 * service's): undefined when it exists with every setting of serviceQueueSettings, else what differs.
 */
async function queueProblem(connection: ChannelModel, queue: string): Promise<string | undefined> {
  const probe = async <T>(ask: (channel: Awaited<ReturnType<ChannelModel['createChannel']>>) => Promise<T>) => {
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    try {
      return { ok: true as const, value: await ask(channel) };
    } catch (error) {
      return { ok: false as const, error };
    } finally {
      await channel.close().catch(() => {});
    }
  };
  // Passive first: a redeclare of a queue that does not exist would create it.
  const exists = await probe((channel) => channel.checkQueue(queue));
  if (!exists.ok) {
    if (isAmqpError(exists.error, 404)) return `there is no queue "${queue}" on the broker`;
    if (isAmqpError(exists.error, 405)) {
      return `"${queue}" is exclusive to the connection that declared it: no other instance of the service can ` +
        'consume it, and the broker deletes it (and the signups in it) when that connection closes';
    }
    return `the broker refused a passive declare of "${queue}": ${brokerReason(exists.error)}`;
  }
  const same = await probe((channel) => channel.assertQueue(queue, serviceQueueSettings(queue)));
  if (!same.ok) {
    const reason = brokerReason(same.error);
    if (/'durable'/.test(reason)) return `"${queue}" is not durable: a broker restart deletes it with every signup waiting in it (${reason})`;
    if (/'auto_delete'/.test(reason)) return `"${queue}" is auto-delete: the broker deletes it when the service's last consumer goes (${reason})`;
    if (/x-dead-letter/.test(reason)) {
      return `"${queue}" does not dead-letter to "${deadLetterQueueName(queue)}": declare it with the arguments ` +
        `'x-dead-letter-exchange': '' and 'x-dead-letter-routing-key': deadLetterQueueName(queue) (${reason})`;
    }
    return `"${queue}" exists with other settings than durable, not exclusive, not auto-delete, classic (${reason})`;
  }
  const parked = await probe((channel) => channel.checkQueue(deadLetterQueueName(queue)));
  if (!parked.ok) {
    return `"${queue}" dead-letters to "${deadLetterQueueName(queue)}", which does not exist: the broker drops what it ` +
      'dead-letters to a missing queue. Declare the dead-letter queue too, durable and classic';
  }
  const durableParking = await probe((channel) => channel.assertQueue(deadLetterQueueName(queue), { durable: true, arguments: CLASSIC_QUEUE }));
  if (!durableParking.ok) {
    return `the dead-letter queue "${deadLetterQueueName(queue)}" is not a durable classic queue ` +
      `(${brokerReason(durableParking.error)}): a broker restart deletes it with every signup parked in it`;
  }
  return undefined;
}

describe('04 rabbitmq-fanout', () => {

  /** A fresh exchange name for one test; the services' queues are registered for deletion too. */
  function signupExchange(rabbit: RabbitScope): string {
    const exchange = rabbit.exchange(uniqueName('signups'));
    for (const service of [...SERVICES, 'live-feed']) {
      rabbit.queue(serviceQueueName(exchange, service));
      rabbit.queue(deadLetterQueueName(serviceQueueName(exchange, service)));
    }
    // A solution that shares one queue between services usually names it after the exchange.
    rabbit.queue(exchange);
    return exchange;
  }

  function signup(name: string): UserSignedUp {
    const userId = randomUUID();
    return { userId, email: `${name.toLowerCase()}.${userId.slice(0, 8)}@example.com`, name, signedUpAt: new Date().toISOString() };
  }

  /** Publishes through the learner's publishSignup and waits until the broker has routed every signup. */
  async function publish(rabbit: RabbitScope, exchange: string, events: UserSignedUp[]): Promise<void> {
    const channel = await rabbit.confirmChannel();
    for (const event of events) await publishSignup(channel, exchange, event);
    await channel.waitForConfirms();
  }

  /** Starts the learner's subscriber for a service, on its own connection, recording what it handles. */
  async function subscriber(rabbit: RabbitScope, exchange: string, service: string) {
    const connection = await rabbit.connect();
    const channel = await rabbit.channel(connection);
    const handled: string[] = [];
    const subscription = await startSignupSubscriber(channel, { exchange, service }, async (event) => {
      handled.push(event.userId);
    });
    rabbit.queue(subscription.queue);
    return { handled, connection, channel, ...subscription };
  }

  it('signups are published to the fanout exchange as persistent JSON', async ({ rabbit }) => {
    const exchange = signupExchange(rabbit);
    await assertSignupExchange(await rabbit.channel(), exchange);
    const mismatch = await rabbit.exchangeMismatch(exchange, 'fanout', { durable: true });
    expect(mismatch, `assertSignupExchange should declare "${exchange}" as a durable fanout exchange; ` +
      `redeclaring it that way failed with: ${mismatch} (${WHERE}/topology.ts)`).toBeUndefined();

    // A queue of the check's own, bound with a key the publisher cannot know: fanout ignores keys.
    const channel = await rabbit.channel();
    const { queue: probe } = await channel.assertQueue('', { exclusive: true, arguments: CLASSIC_QUEUE });
    await channel.bindQueue(probe, exchange, 'any-key-at-all');
    const event = signup('Ada');
    await publish(rabbit, exchange, [event]);

    const received = await rabbit.drain(probe);
    expect(received.length, `a queue bound to the "${exchange}" exchange received ${received.length} messages ` +
      `for one publishSignup() call. Publish to the exchange with channel.publish(exchange, '', body, options), ` +
      `not straight to a queue with sendToQueue: only the exchange knows every subscriber (${WHERE}/publisher.ts).`).toBe(1);
    const message = received[0]!;
    expect(message.fields.exchange, `the signup arrived through the "${message.fields.exchange}" exchange ` +
      `("" is the default exchange, which delivers straight to one queue) (${WHERE}/publisher.ts)`).toBe(exchange);
    expect(message.properties.deliveryMode, 'the message should be persistent (delivery mode 2) so a durable queue ' +
      `keeps it on disk: pass { persistent: true } (${WHERE}/publisher.ts)`).toBe(2);
    expect(message.properties.contentType, `set { contentType: 'application/json' } so consumers know how to read ` +
      `the body (${WHERE}/publisher.ts)`).toBe('application/json');
    let body: unknown;
    try {
      body = JSON.parse(message.content.toString('utf8'));
    } catch {
      expect.fail(`the message body is not JSON: ${JSON.stringify(message.content.toString('utf8').slice(0, 80))}. ` +
        `Use encodeSignup(event) (${WHERE}/publisher.ts)`);
    }
    expect(body, `the body should be the signup event as JSON (${WHERE}/publisher.ts)`).toEqual(event);
  });

  it('every bound service gets each signup', async ({ rabbit }) => {
    const exchange = signupExchange(rabbit);
    const services = await Promise.all(SERVICES.map((service) => subscriber(rabbit, exchange, service)));
    const events = [signup('Grace'), signup('Linus'), signup('Barbara')];
    await publish(rabbit, exchange, events);
    const expected = events.map((e) => e.userId).sort();

    await vi.waitFor(() => {
      const counts = SERVICES.map((service, i) => `${service}: ${services[i]!.handled.length}`).join(', ');
      const total = services.reduce((sum, s) => sum + s.handled.length, 0);
      services.forEach((s, i) => {
        let why: string;
        if (total === 0) {
          why = 'No service received anything: publishSignup should publish to the exchange, and each ' +
            `subscriber should bind its own queue to it (${WHERE}/publisher.ts, topology.ts).`;
        } else if (services.some((other) => other.handled.length === 0) && services.some((other) => other.handled.length >= events.length)) {
          const only = SERVICES.filter((_, j) => services[j]!.handled.length > 0).join(' and ');
          why = `Only ${only} received the signups: publishSignup should publish to the fanout exchange, not ` +
            `straight to one service's queue (${WHERE}/publisher.ts).`;
        } else if (total === events.length) {
          why = 'Each signup reached exactly one service: they share one queue, so RabbitMQ divides the ' +
            'messages between them. That is a work queue (lesson 05), not publish/subscribe. Give every ' +
            `service its own queue bound to the fanout exchange: assertServiceQueue (${WHERE}/subscriber.ts, topology.ts).`;
        } else {
          why = 'Some services got the signups and others did not: publish to the fanout exchange, not to one ' +
            `service's queue (${WHERE}/publisher.ts), and bind every service's queue to it (${WHERE}/topology.ts).`;
        }
        expect([...s.handled].sort(), `the ${SERVICES[i]} service handled ${s.handled.length} of ${events.length} ` +
          `signups (${counts}). ${why}`).toEqual(expect.arrayContaining(expected));
      });
    }, WAIT);
    for (const [i, s] of services.entries()) {
      expect([...s.handled].sort(), `the ${SERVICES[i]} service handled a signup more than once`).toEqual(expected);
    }
  });

  it('two instances of one service share its queue, so each signup is handled once per service', async ({ rabbit }) => {
    const exchange = signupExchange(rabbit);
    const [emailA, emailB, audit] = await Promise.all([
      subscriber(rabbit, exchange, 'email'),
      subscriber(rabbit, exchange, 'email'),
      subscriber(rabbit, exchange, 'audit'),
    ]);
    expect(audit!.queue, `the email and audit services both consume "${audit!.queue}": services that share a ` +
      `queue split its messages between them. Each service needs a queue of its own (${WHERE}/subscriber.ts).`)
      .not.toBe(emailA!.queue);
    const events = [signup('Ada'), signup('Alan'), signup('Edsger'), signup('Frances')];
    await publish(rabbit, exchange, events);
    const expected = events.map((e) => e.userId).sort();
    const emails = () => [...emailA!.handled, ...emailB!.handled].sort();

    await vi.waitFor(() => {
      expect(audit!.handled.length, `the audit service handled ${audit!.handled.length} of ${events.length} signups`).toBe(events.length);
      expect(emails().length, `two email instances handled ${emails().length} signups between them, for ` +
        `${events.length} published`).toBeGreaterThanOrEqual(events.length);
    }, WAIT);
    expect(emailA!.queue, 'both instances of the email service should consume the same queue: the queue belongs ' +
      `to the service, not to one running copy of it (${WHERE}/topology.ts)`).toBe(emailB!.queue);
    expect(emails(), `the email service as a whole should send one welcome email per signup; its two instances ` +
      `handled ${emails().length} signups for ${events.length} published. With a queue per instance, every copy of ` +
      `the service gets every signup (${WHERE}/topology.ts).`).toEqual(expected);
  });

  it('a service that was down when a signup was published receives it when it comes back', async ({ rabbit, procs }) => {
    const exchange = signupExchange(rabbit);
    const env = { ...serviceEnv('rabbitmq'), SIGNUP_EXCHANGE: exchange, SERVICE_NAME: 'email' };
    const first = procs.start(SLUG, 'service.ts', { env, name: 'the email service (service.ts)' });
    const ready = await first.waitForOutput(/ready: consuming (\S+)/, 'reported it was ready');
    const queue = rabbit.queue(ready[1]!);
    await first.stop();

    const missed = signup('Margaret');
    await publish(rabbit, exchange, [missed]);
    const waiting = await rabbit.readyMessages(queue);
    expect(waiting, `the email service's queue "${queue}" no longer exists now that the service is down. An ` +
      'exclusive or auto-delete queue dies with its consumer, and then the exchange has nowhere to put the signup: ' +
      `the same loss as Redis pub/sub in lesson 02. Declare a durable, named, non-exclusive queue (${WHERE}/topology.ts).`)
      .not.toBeUndefined();
    expect(waiting, `while the email service was down, its queue "${queue}" should hold the signup for it; it holds ` +
      `${waiting} messages. Is the queue bound to the exchange (${WHERE}/topology.ts)?`).toBe(1);

    const second = procs.start(SLUG, 'service.ts', { env, name: 'the email service, restarted' });
    await second.waitForOutput(new RegExp(`handled user\\.signed-up ${missed.userId}`),
      `handled the signup ${missed.userId} that was published while it was down`);
    await second.stop();
  });

  it('a live feed on an exclusive auto-delete queue receives signups only while it is connected', async ({ rabbit }) => {
    const exchange = signupExchange(rabbit);
    await assertSignupExchange(await rabbit.channel(), exchange);

    const firstConnection = await rabbit.connect();
    const firstSeen: string[] = [];
    const firstFeed = await startLiveFeed(await rabbit.channel(firstConnection), exchange, (e) => void firstSeen.push(e.userId));
    rabbit.queue(firstFeed.queue);
    const whileOpen = signup('Hedy');
    await publish(rabbit, exchange, [whileOpen]);
    await vi.waitFor(() => expect(firstSeen, `the live feed never received a signup published while it was open ` +
      `(${WHERE}/live-feed.ts)`).toContain(whileOpen.userId), WAIT);

    await firstConnection.close();
    await vi.waitFor(async () => expect(await rabbit.queueExists(firstFeed.queue), `the live feed's queue ` +
      `"${firstFeed.queue}" still exists after the feed's connection closed. A live view wants no history: declare ` +
      `its queue with assertQueue('', { exclusive: true, autoDelete: true }) so the broker deletes it with its ` +
      `connection (${WHERE}/live-feed.ts).`).toBe(false), WAIT);

    const whileClosed = signup('Katherine');
    await publish(rabbit, exchange, [whileClosed]);

    const secondConnection = await rabbit.connect();
    const secondSeen: string[] = [];
    const secondFeed = await startLiveFeed(await rabbit.channel(secondConnection), exchange, (e) => void secondSeen.push(e.userId));
    rabbit.queue(secondFeed.queue);
    const afterReopen = signup('Annie');
    await publish(rabbit, exchange, [afterReopen]);
    await vi.waitFor(() => expect(secondSeen, `a new live feed never received a signup published after it ` +
      `started (${WHERE}/live-feed.ts)`).toContain(afterReopen.userId), WAIT);
    expect(secondSeen, 'the new live feed received a signup published while no feed was open: its queue outlived ' +
      `the previous feed. Let the broker name it (assertQueue('')) and make it exclusive (${WHERE}/live-feed.ts).`)
      .not.toContain(whileClosed.userId);
  });

  it('two live feeds open at once each receive every signup, on a queue of their own that no other connection may read', async ({ rabbit }) => {
    const exchange = signupExchange(rabbit);
    await assertSignupExchange(await rabbit.channel(), exchange);
    const feeds: Array<{ queue: string; seen: string[] }> = [];
    for (const tab of ['the first dashboard tab', 'the second dashboard tab']) {
      const seen: string[] = [];
      const channel = await rabbit.channel(await rabbit.connect());
      const feed = await startLiveFeed(channel, exchange, (e) => void seen.push(e.userId)).catch((error: unknown) => {
        const hint = feeds.length === 0 ? '' : " while another was open. Every open feed needs a queue of its own: " +
          "assertQueue('') lets the broker pick a unique name";
        throw new Error(`${tab} could not start its live feed (${brokerReason(error)})${hint} (${WHERE}/live-feed.ts)`, { cause: error });
      });
      rabbit.queue(feed.queue);
      feeds.push({ queue: feed.queue, seen });
    }
    const [first, second] = feeds as [typeof feeds[0], typeof feeds[0]];
    expect(second.queue, `both live feeds consume "${first.queue}", so they split the signups between them instead ` +
      `of each showing all of them: let the broker name each feed's queue (assertQueue('')) (${WHERE}/live-feed.ts)`).not.toBe(first.queue);

    const events = [signup('Barbara'), signup('Frances')];
    await publish(rabbit, exchange, events);
    await vi.waitFor(() => {
      for (const [i, feed] of feeds.entries()) {
        expect(feed.seen, `live feed ${i + 1} of 2 should show every signup published while it is open ` +
          `(${WHERE}/live-feed.ts)`).toEqual(events.map((e) => e.userId));
      }
    }, WAIT);

    // A connection of the check's own: an exclusive queue belongs to the connection that declared it.
    const outsider = await rabbit.channel();
    const access = await outsider.checkQueue(first.queue).then(() => 'allowed', (error: unknown) =>
      isAmqpError(error, 405) ? 'refused' : brokerReason(error));
    expect(access, `another connection could open the live feed's queue "${first.queue}" (the broker said: ${access}). ` +
      'A live view is private: declare its queue exclusive, so only its own connection may use it and the broker ' +
      `deletes it with that connection (${WHERE}/live-feed.ts)`).toBe('refused');
  });

  it('a live feed skips a malformed message and goes on with later signups', async ({ rabbit }) => {
    const exchange = signupExchange(rabbit);
    await assertSignupExchange(await rabbit.channel(), exchange);
    const seen: unknown[] = [];
    const feed = await startLiveFeed(await rabbit.channel(await rabbit.connect()), exchange, (e) => void seen.push(e));
    rabbit.queue(feed.queue);
    const raw = await rabbit.confirmChannel();
    raw.publish(exchange, '', Buffer.from(JSON.stringify({ userId: 42, email: null })), { contentType: 'application/json' });
    await raw.waitForConfirms();
    const valid = signup('Mary');
    await publish(rabbit, exchange, [valid]);

    await vi.waitFor(() => expect(seen.length, `a signup published after a malformed message never reached the live ` +
      `feed (${WHERE}/live-feed.ts)`).toBeGreaterThan(0), WAIT);
    await vi.waitFor(() => expect(seen, 'the live feed handed onSignup something that is not a signup, ' +
      `${JSON.stringify(seen[0])}: read every message with parseSignup and pass on only what it accepts, logging ` +
      `the rest (${WHERE}/live-feed.ts)`).toEqual([valid]), WAIT);
  });

  it('a malformed signup message is rejected without stopping the service', async ({ rabbit }) => {
    const exchange = signupExchange(rabbit);
    const email = await subscriber(rabbit, exchange, 'email');
    const raw = await rabbit.confirmChannel();
    raw.publish(exchange, '', Buffer.from('{ this is not json'), { contentType: 'application/json' });
    raw.publish(exchange, '', Buffer.from(JSON.stringify({ userId: 42 })), { contentType: 'application/json' });
    await raw.waitForConfirms();
    const valid = signup('Radia');
    await publish(rabbit, exchange, [valid]);

    await vi.waitFor(() => expect(email.handled, 'after two malformed messages, a valid signup never reached the ' +
      'handler: a message that cannot be parsed must be rejected (channel.nack(message, false, false)) so the ' +
      `service moves on (${WHERE}/subscriber.ts)`).toContain(valid.userId), WAIT);
    expect(email.handled, `only the valid signup should reach the handler (${WHERE}/subscriber.ts)`).toEqual([valid.userId]);

    // Closing the channel returns whatever the service still held unacknowledged to the queue.
    await closeConsumerChannel(email.channel);
    const left = await rabbit.readyMessages(email.queue);
    expect(left, `${left} message(s) went back to "${email.queue}" when the service disconnected: the malformed ` +
      'messages were neither acknowledged nor rejected, or were requeued to fail again forever. Reject them without ' +
      `requeue: channel.nack(message, false, false) (${WHERE}/subscriber.ts)`).toBe(0);
    const parked = await rabbit.readyMessages(deadLetterQueueName(email.queue));
    expect(parked, `the two malformed messages were rejected, but the dead-letter queue ` +
      `"${deadLetterQueueName(email.queue)}" holds ${parked ?? 'nothing (it does not exist)'}: they were dropped. ` +
      `Declare the service's queue with its dead-letter arguments and the dead-letter queue itself (${WHERE}/topology.ts)`)
      .toBe(2);
  });

  it('the broker keeps each service\'s queue durable, shared, not auto-delete and dead-lettering, and the exchange a durable fanout', async ({ rabbit }) => {
    const exchange = signupExchange(rabbit);
    const services = await Promise.all(['email', 'audit'].map((service) => subscriber(rabbit, exchange, service)));
    // Asked on a connection of the check's own: what the broker holds, not what the learner's objects say.
    const inspector = await rabbit.connect();
    const type = await rabbit.exchangeMismatch(exchange, 'fanout', { durable: true });
    expect(type, `after startSignupSubscriber, the broker's "${exchange}" exchange is not a durable fanout ` +
      `exchange: ${type} (${WHERE}/topology.ts)`).toBeUndefined();
    for (const [i, service] of ['email', 'audit'].entries()) {
      const queue = services[i]!.queue;
      expect(queue, `the ${service} service consumes "${queue}"; its queue should be named ` +
        `serviceQueueName(exchange, '${service}') so every instance finds it (${WHERE}/topology.ts, subscriber.ts)`)
        .toBe(serviceQueueName(exchange, service));
      const problem = await queueProblem(inspector, queue);
      expect(problem, `the ${service} service is running and, asked from another connection, the broker says: ` +
        `${problem}. A service's queue must be durable, not exclusive and not auto-delete, so signups wait in it ` +
        `across restarts of the service and of the broker, and must dead-letter what the service rejects ` +
        `(${WHERE}/topology.ts).`).toBeUndefined();
    }
  });

  it('a signup whose handler throws or rejects is parked in the dead-letter queue and reported, and later signups still flow', async ({ rabbit, onTestFinished }) => {
    const exchange = signupExchange(rabbit);
    const errors = recordConsoleErrors(onTestFinished);
    const throws = signup('Thrown');
    const rejects = signup('Rejected');
    const later = [signup('Later'), signup('Last')];
    const failures = new Map([
      [throws.userId, 'the mail server refused the address (thrown)'],
      [rejects.userId, 'the mail server timed out (rejected)'],
    ]);
    const attempts = new Map<string, number>();
    const handled: string[] = [];
    // Not async: the first failure is thrown before any promise exists, the second is a rejection.
    const handler: SignupHandler = (event) => {
      attempts.set(event.userId, (attempts.get(event.userId) ?? 0) + 1);
      if (event.userId === throws.userId) throw new Error(failures.get(throws.userId));
      if (event.userId === rejects.userId) return Promise.reject(new Error(failures.get(rejects.userId)));
      handled.push(event.userId);
      return Promise.resolve();
    };
    const connection = await rabbit.connect();
    const channel = await rabbit.channel(connection);
    const { queue } = await startSignupSubscriber(channel, { exchange, service: 'email' }, handler);
    rabbit.queue(queue);
    const deadLetters = rabbit.queue(deadLetterQueueName(queue));
    await publish(rabbit, exchange, [throws, rejects, ...later]);

    const tries = (event: UserSignedUp) => attempts.get(event.userId) ?? 0;
    await vi.waitFor(() => {
      expect(tries(throws) + tries(rejects), `no signup reached the handler (${WHERE}/subscriber.ts)`).toBeGreaterThan(0);
      expect(handled, `after two signups whose handler failed, the later signups never reached the handler: a ` +
        `failed signup must not stop the service (${WHERE}/subscriber.ts)`).toEqual(expect.arrayContaining(later.map((e) => e.userId)));
    }, WAIT);

    const parked = () => rabbit.readyMessages(deadLetters);
    const hotLoop = () => tries(throws) > 2 || tries(rejects) > 2;
    await eventually(async () => hotLoop() || (await parked()) === 2);
    expect(hotLoop(), `the handler was called ${tries(throws)} times for the signup whose handler throws and ` +
      `${tries(rejects)} times for the one that rejects: each failure was requeued and came straight back, to fail ` +
      'again, as fast as the broker can deliver it. Reject a failed signup without requeue: ' +
      `channel.nack(message, false, false) (${WHERE}/subscriber.ts)`).toBe(false);

    const stillParked = await parked();
    await closeConsumerChannel(channel);
    const unsettled = await rabbit.readyMessages(queue);
    expect(unsettled, `${unsettled} failed signup(s) went back to "${queue}" when the service disconnected: they were ` +
      'neither acknowledged nor rejected. A handler may throw before it returns a promise, or its promise may ' +
      'reject: call it inside try { await handle(event) } catch, so both end in channel.nack(message, false, false) ' +
      `(${WHERE}/subscriber.ts)`).toBe(0);
    if (stillParked !== 2) {
      const problem = await queueProblem(await rabbit.connect(), queue);
      expect(problem, `the failed signups are not in the dead-letter queue "${deadLetters}": ${problem} ` +
        `(${WHERE}/topology.ts)`).toBeUndefined();
    }
    expect(stillParked, `the two signups whose handler failed should be parked in "${deadLetters}"; it holds ` +
      `${stillParked}. The queue dead-letters what is rejected, so an acknowledged failure is simply gone: reject ` +
      `it with channel.nack(message, false, false) instead of acking it (${WHERE}/subscriber.ts)`).toBe(2);

    for (const [userId, reason] of failures) {
      const reported = errors.some((line) => line.includes(userId) && line.includes(reason));
      expect(reported, `the handler failed for signup ${userId} with "${reason}", and nothing printed with ` +
        `console.error names both the signup's userId and the error: report which signup failed and why ` +
        `(${WHERE}/subscriber.ts)`).toBe(true);
    }
  });

  it('a service killed in the middle of a signup gets it again when it restarts, and nothing is lost', async ({ rabbit, procs }) => {
    const exchange = signupExchange(rabbit);
    const env = { ...serviceEnv('rabbitmq'), SIGNUP_EXCHANGE: exchange, SERVICE_NAME: 'email' };
    // Each signup takes a minute to handle: the service is still busy with it when it is killed.
    const first = procs.start(SLUG, 'service.ts', { env: { ...env, HANDLE_MS: '60000' }, name: 'the email service (service.ts)' });
    const ready = await first.waitForOutput(/ready: consuming (\S+)/, 'reported it was ready');
    const queue = rabbit.queue(ready[1]!);
    const events = [signup('Ada'), signup('Grace')];
    await publish(rabbit, exchange, events);
    await first.waitForOutput(new RegExp(`handling user\\.signed-up ${events[0]!.userId}`), `started handling signup ${events[0]!.userId}`);
    await first.kill('SIGKILL');

    await vi.waitFor(async () => {
      const back = await rabbit.readyMessages(queue);
      expect(back, `the email service was killed while it was handling the first of ${events.length} signups, ` +
        `before it had handled any, and the broker put ${back} back in "${queue}": the rest had already been ` +
        'acknowledged, so they are lost. Consume with { noAck: false } and call channel.ack(message) only after the ' +
        `handler has finished (${WHERE}/subscriber.ts)`).toBe(events.length);
    }, WAIT);

    const second = procs.start(SLUG, 'service.ts', { env: { ...env, HANDLE_MS: '0' }, name: 'the email service, restarted' });
    for (const event of events) {
      await second.waitForOutput(new RegExp(`handled user\\.signed-up ${event.userId}`),
        `handled the signup ${event.userId} it was working on when it was killed`);
    }
    await second.stop();
    for (const event of events) {
      const times = second.output().split(`handled user.signed-up ${event.userId}`).length - 1;
      expect(times, `the restarted service handled signup ${event.userId} ${times} times (${WHERE}/subscriber.ts)`).toBe(1);
    }
  });
});
