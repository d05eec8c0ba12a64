import { gradedFolder } from './support/lesson.ts';
import { describe, expect, it, vi } from './support/fixtures.ts';
import { createSignupApp } from '@lesson/01-signup-events/app.ts';
import type { UserSignedUp } from '@lesson/01-signup-events/events.ts';

const WHERE = gradedFolder('01-signup-events');

/** Fake collaborators that record what the subscribers asked of them. */
function recordingDependencies() {
  const emails: string[] = [];
  const keys: string[] = [];
  const audits: string[] = [];
  const auditEntries: Array<{ action: string; userId: string; at: string }> = [];
  const errors: unknown[] = [];
  return {
    emails,
    keys,
    audits,
    auditEntries,
    errors,
    deps: {
      mailer: { sendWelcomeEmail: async (to: string) => void emails.push(to) },
      keys: { issueKey: async (userId: string) => (keys.push(userId), `key-${userId}`) },
      audit: {
        record: async (entry: { action: string; userId: string; at: string }) => {
          audits.push(entry.userId);
          auditEntries.push(entry);
        },
      },
      onError: (error: unknown) => void errors.push(error),
    },
  };
}

/** A promise the test resolves when it chooses: stands in for a slow subscriber. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

async function settles<T>(promise: Promise<T>, withinMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), withinMs)));
  try {
    return await Promise.race([promise.then(() => true as const), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

async function flushMicrotasksAndTimers(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * The two things almost every requirement stands on, checked first so that a failure names the file
 * that is really wrong: the bus delivers what is emitted on it (event-bus.ts), and signup emits
 * (user-service.ts). Resolves with what is missing, or undefined.
 */
async function deliveryProblem(): Promise<string | undefined> {
  const probe: UserSignedUp = { userId: 'u-probe', email: 'probe@example.com', name: 'Probe', signedUpAt: new Date().toISOString() };
  const onBus = createSignupApp(recordingDependencies().deps);
  const delivered: string[] = [];
  try {
    onBus.bus.on('user.signed-up', (event) => void delivered.push(event.userId));
    onBus.bus.emit('user.signed-up', probe);
  } catch (error) {
    return `the bus itself does not work yet: ${error instanceof Error ? error.message : String(error)} (${WHERE}/event-bus.ts)`;
  }
  await flushMicrotasksAndTimers();
  if (delivered.length === 0) {
    return `bus.emit('user.signed-up', …) never reached a handler registered with bus.on(): EventBus must pass ` +
      `each emitted event to its handlers (${WHERE}/event-bus.ts)`;
  }
  const viaSignup = createSignupApp(recordingDependencies().deps);
  const emitted: string[] = [];
  viaSignup.bus.on('user.signed-up', (event) => void emitted.push(event.userId));
  try {
    await viaSignup.users.signup({ email: 'probe@example.com', name: 'Probe' });
  } catch (error) {
    return `signup() failed: ${error instanceof Error ? error.message : String(error)} (${WHERE}/user-service.ts)`;
  }
  await flushMicrotasksAndTimers();
  if (emitted.length === 0) {
    return `signup() emitted no user.signed-up event on the bus, so no subscriber can hear of it: ` +
      `UserService.signup() must emit one (${WHERE}/user-service.ts)`;
  }
  return undefined;
}

/** Fails the requirement at once, naming the right file, when its precondition does not hold. */
async function requireDelivery(): Promise<void> {
  const problem = await deliveryProblem();
  if (problem) expect.fail(problem);
}

/**
 * The precondition of the requirements that watch the three subscribers next to a failing one:
 * createSignupApp registers them (app.ts), and each does its job (subscribers.ts).
 */
async function requireSubscribers(): Promise<void> {
  await requireDelivery();
  const { deps, emails, keys, audits } = recordingDependencies();
  const { bus, users } = createSignupApp(deps);
  if (bus.listenerCount('user.signed-up') === 0) {
    expect.fail('createSignupApp() registered no subscriber on the bus, so a signup sends no email, issues no key and ' +
      `audits nothing: call subscribeWelcomeEmail, subscribeAuthKey and subscribeAudit there (${WHERE}/app.ts)`);
  }
  const user = await users.signup({ email: 'probe@example.com', name: 'Probe' }, { waitForSubscribers: true });
  await flushMicrotasksAndTimers();
  const missing = [
    ...(emails.length === 0 ? ['no welcome email (subscribeWelcomeEmail)'] : []),
    ...(keys.length === 0 ? ['no auth key (subscribeAuthKey)'] : []),
    ...(audits.length === 0 ? ['no audit entry (subscribeAudit)'] : []),
  ];
  if (missing.length > 0) {
    expect.fail(`a signup of ${user.id} with no failing subscriber around produced ${missing.join(', ')}: each subscribe ` +
      `function must register its handler with bus.on (${WHERE}/subscribers.ts), and createSignupApp must call all three ` +
      `(${WHERE}/app.ts)`);
  }
}

describe('01 signup-events', () => {
  it('signup emits exactly one user.signed-up event carrying the new user', async () => {
    const { deps } = recordingDependencies();
    const { bus, users } = createSignupApp(deps);
    const seen: UserSignedUp[] = [];
    bus.on('user.signed-up', (event) => void seen.push(event));

    const user = await users.signup({ email: 'ada@example.com', name: 'Ada' }, { waitForSubscribers: true });

    expect(seen.length, `expected one user.signed-up event per signup, saw ${seen.length}. ` +
      `UserService.signup() should emit it once on the bus (${WHERE}/user-service.ts).`).toBe(1);
    expect(seen[0], `the event should describe the user signup() returned (${WHERE}/user-service.ts)`).toMatchObject({
      userId: user.id,
      email: user.email,
      name: user.name,
    });
    expect(typeof seen[0]!.signedUpAt, 'the event needs a signedUpAt timestamp (an ISO string)').toBe('string');
  });

  it('the email, auth-key and audit subscribers each receive the signup', async () => {
    await requireDelivery();
    const { deps, emails, keys, audits, auditEntries } = recordingDependencies();
    const { bus, users } = createSignupApp(deps);
    const announced: UserSignedUp[] = [];
    bus.on('user.signed-up', (event) => void announced.push(event));

    const user = await users.signup({ email: 'grace@example.com', name: 'Grace' });

    await vi.waitFor(() => {
      expect(emails, `the welcome-email subscriber never sent to ${user.email}: ` +
        `is subscribeWelcomeEmail written (${WHERE}/subscribers.ts) and registered in createSignupApp (${WHERE}/app.ts)?`).toEqual([user.email]);
      expect(keys, `no auth key was issued for ${user.id}: check subscribeAuthKey (${WHERE}/subscribers.ts) and that ` +
        `createSignupApp calls it (${WHERE}/app.ts)`).toEqual([user.id]);
      expect(audits, `nothing was audited for ${user.id}: check subscribeAudit (${WHERE}/subscribers.ts) and that ` +
        `createSignupApp calls it (${WHERE}/app.ts)`).toEqual([user.id]);
    }, { timeout: 2_000, interval: 10 });
    // An audit trail records what happened and when it happened, not when the subscriber got to it:
    // an event from an hour ago shows which time the entry carries.
    const late: UserSignedUp = { ...announced[0]!, userId: 'u-late', signedUpAt: new Date(Date.now() - 3_600_000).toISOString() };
    bus.emit('user.signed-up', late);
    await vi.waitFor(() => expect(audits).toContain(late.userId), { timeout: 2_000, interval: 10 });
    expect(auditEntries.find((entry) => entry.userId === late.userId), 'the audit entry should say what happened and when it ' +
      `happened: action 'user.signed-up' and the event's signedUpAt, not the time the subscriber ran (${WHERE}/subscribers.ts)`)
      .toEqual({ action: 'user.signed-up', userId: late.userId, at: late.signedUpAt });
  });

  it('a new subscriber on the bus receives signups without any change to UserService', async () => {
    await requireDelivery();
    const { deps } = recordingDependencies();
    const { bus, users } = createSignupApp(deps);
    const analytics: string[] = [];
    bus.on('user.signed-up', async (event) => void analytics.push(event.userId));

    const user = await users.signup({ email: 'linus@example.com', name: 'Linus' });

    await vi.waitFor(() => {
      expect(analytics, 'a handler registered with bus.on("user.signed-up") was never called. ' +
        'UserService must announce the signup on the bus instead of calling each subscriber itself ' +
        `(${WHERE}/user-service.ts).`).toEqual([user.id]);
    }, { timeout: 2_000, interval: 10 });
  });

  it('a subscriber that throws does not break signup or the other subscribers, and its error is reported', async () => {
    await requireSubscribers();
    const { deps, emails, errors } = recordingDependencies();
    const { bus, users } = createSignupApp(deps);
    const boom = new Error('analytics is down');
    bus.on('user.signed-up', () => {
      throw boom;
    });
    const after: string[] = [];
    bus.on('user.signed-up', (event) => void after.push(event.userId));

    const user = await users.signup({ email: 'barbara@example.com', name: 'Barbara' }).catch((error: unknown) =>
      expect.fail(`signup() failed because a subscriber threw (${String(error)}). ` +
        `EventBus must run each handler in isolation and report its error (${WHERE}/event-bus.ts).`),
    );

    await vi.waitFor(() => {
      expect(after, 'a subscriber registered after the failing one never ran: one failure stopped the others ' +
        `(${WHERE}/event-bus.ts)`).toEqual([user.id]);
      expect(emails, 'the welcome email was not sent because another subscriber threw').toEqual([user.email]);
      expect(errors, 'the thrown error never reached the onError reporter: errors must be reported, ' +
        `not swallowed (${WHERE}/event-bus.ts)`).toContain(boom);
    }, { timeout: 2_000, interval: 10 });
  });

  it('a subscriber that rejects asynchronously does not crash the process, and its error is reported', async () => {
    await requireSubscribers();
    const { deps, audits, errors } = recordingDependencies();
    const { bus, users } = createSignupApp(deps);
    const rejection = new Error('CRM timed out');
    bus.on('user.signed-up', async () => {
      await Promise.resolve();
      throw rejection;
    });

    const user = await users.signup({ email: 'margaret@example.com', name: 'Margaret' });

    await vi.waitFor(() => {
      expect(errors, 'an async handler rejected and the error never reached onError. try/catch around ' +
        'a call does not catch a rejection that happens later: the bus must handle the promise the handler ' +
        `returns, or it becomes an unhandled rejection that can crash Node (${WHERE}/event-bus.ts).`).toContain(rejection);
      expect(audits, 'the audit subscriber did not run').toEqual([user.id]);
    }, { timeout: 2_000, interval: 10 });
  });

  it('once() handlers fire for the first signup only', async () => {
    await requireDelivery();
    const { deps } = recordingDependencies();
    const { bus, users } = createSignupApp(deps);
    const firstUsers: string[] = [];
    bus.once('user.signed-up', (event) => void firstUsers.push(event.email));

    await users.signup({ email: 'first@example.com', name: 'First' }, { waitForSubscribers: true });
    await users.signup({ email: 'second@example.com', name: 'Second' }, { waitForSubscribers: true });

    expect(firstUsers, `a once() handler should run for the first event and then be removed (${WHERE}/event-bus.ts)`)
      .toEqual(['first@example.com']);
  });

  it('signup does not wait for slow async subscribers', async () => {
    await requireDelivery();
    const { deps } = recordingDependencies();
    const { bus, users } = createSignupApp(deps);
    const slow = gate();
    let started = false;
    bus.on('user.signed-up', () => {
      started = true;
      return slow.opened;
    });

    try {
      const signup = users.signup({ email: 'hedy@example.com', name: 'Hedy' });
      const settled = await settles(signup, 2_000);
      expect(started, 'the slow subscriber was never called, so this proves nothing yet: signup() must emit ' +
        `user.signed-up on the bus (${WHERE}/user-service.ts)`).toBe(true);
      expect(settled, 'signup() was still pending while a subscriber was busy. The user ' +
        'should not wait for emails and audits: emit and return, do not await the handlers ' +
        `(${WHERE}/user-service.ts and event-bus.ts).`).toBe(true);
    } finally {
      slow.open();
    }
  });

  it('a slow subscriber does not hold up the others: each starts as soon as the signup is announced, waiting or not', async () => {
    await requireDelivery();
    const { deps } = recordingDependencies();
    const { bus, users } = createSignupApp(deps);
    const slow = gate();
    const slowStarted: string[] = [];
    bus.on('user.signed-up', async (event) => {
      slowStarted.push(event.userId);
      await slow.opened;
    });
    const after: string[] = [];
    bus.on('user.signed-up', async (event) => void after.push(event.userId));

    const signups: Array<Promise<unknown>> = [];
    try {
      for (const waitForSubscribers of [false, true]) {
        const how = waitForSubscribers ? 'signup({ waitForSubscribers: true })' : 'signup()';
        signups.push(users.signup({ email: `side-by-side-${signups.length}@example.com`, name: 'Side' }, { waitForSubscribers }));
        await vi.waitFor(() => expect(slowStarted.length, `after ${how} the slow subscriber was never called: signup() ` +
          `must announce user.signed-up on the bus (${WHERE}/user-service.ts)`).toBe(signups.length), { timeout: 2_000, interval: 10 });
        const userId = slowStarted.at(-1)!;
        await vi.waitFor(() => expect(after, `after ${how}, a subscriber registered after a slow one did not run while the ` +
          'slow one was still busy: the handlers ran one after another, so one slow email holds up every audit and key. ' +
          'Start every handler at once and let them finish side by side (Promise.all, not a for … await loop) ' +
          `(${WHERE}/event-bus.ts emit and emitAndWait)`).toContain(userId), { timeout: 2_000, interval: 10 });
      }
    } finally {
      slow.open();
    }
    expect(await settles(Promise.allSettled(signups), 2_000), 'the signups never settled after the slow subscriber finished').toBe(true);
  });

  it('a slow once() handler fires for one signup only, even when signups arrive together', async () => {
    await requireDelivery();
    const { deps } = recordingDependencies();
    const { bus, users } = createSignupApp(deps);
    const seen: string[] = [];
    bus.once('user.signed-up', async (event) => {
      seen.push(event.email);
      await new Promise((resolve) => setTimeout(resolve, 50));
    });

    const emails = ['first@example.com', 'second@example.com', 'third@example.com'];
    await Promise.all(emails.map((email) => users.signup({ email, name: 'Together' }, { waitForSubscribers: true })));
    await flushMicrotasksAndTimers();

    expect(seen.length, `the once() handler never ran (${WHERE}/event-bus.ts once)`).toBeGreaterThan(0);
    expect(seen, `three signups arrived while a once() handler was still busy with the first, and it ran ${seen.length} ` +
      'times. A once() handler must be removed before it runs (as EventEmitter#once does), not after its promise ' +
      `settles: by then the next events have reached it too (${WHERE}/event-bus.ts once)`).toHaveLength(1);
  });

  it('signup({ waitForSubscribers: true }) resolves only after every subscriber has finished', async () => {
    await requireDelivery();
    const { deps } = recordingDependencies();
    const { bus, users } = createSignupApp(deps);
    const slow = gate();
    let started = false;
    bus.on('user.signed-up', async () => {
      started = true;
      await slow.opened;
    });

    const signup = users.signup({ email: 'katherine@example.com', name: 'Katherine' }, { waitForSubscribers: true });
    let resolved = false;
    void signup.then(() => (resolved = true), () => (resolved = true));
    await vi.waitFor(() => expect(started, 'the slow subscriber was never called').toBe(true), { timeout: 2_000 });
    await flushMicrotasksAndTimers();
    expect(resolved, 'with waitForSubscribers, signup() resolved while a subscriber was still working: ' +
      `await every handler, e.g. with EventBus.emitAndWait (${WHERE}/event-bus.ts)`).toBe(false);

    slow.open();
    expect(await settles(signup, 2_000), 'signup() never resolved after the last subscriber finished').toBe(true);
  });

  it('unsubscribing stops delivery to that handler', async () => {
    await requireDelivery();
    const { deps } = recordingDependencies();
    const { bus, users } = createSignupApp(deps);
    const seen: string[] = [];
    const unsubscribe = bus.on('user.signed-up', (event) => void seen.push(event.email));

    await users.signup({ email: 'one@example.com', name: 'One' }, { waitForSubscribers: true });
    unsubscribe();
    await users.signup({ email: 'two@example.com', name: 'Two' }, { waitForSubscribers: true });

    expect(seen, `the function returned by bus.on() should remove the handler (${WHERE}/event-bus.ts)`)
      .toEqual(['one@example.com']);

    // Removed means gone from the bus, not only silent: a handler left registered is a leak.
    const before = bus.listenerCount('user.signed-up');
    const again = bus.on('user.signed-up', () => {});
    again();
    expect(bus.listenerCount('user.signed-up'), 'after unsubscribing, the bus still holds the handler\'s listener: ' +
      `remove it from the emitter instead of only ignoring it (${WHERE}/event-bus.ts)`).toBe(before);

    const early: string[] = [];
    const cancel = bus.once('user.signed-up', (event) => void early.push(event.email));
    cancel();
    await users.signup({ email: 'three@example.com', name: 'Three' }, { waitForSubscribers: true });
    expect(early, 'a once() handler unsubscribed before any signup still fired: the function once() returns must remove ' +
      `the listener once() registered, the wrapped one (${WHERE}/event-bus.ts)`).toEqual([]);
    expect(bus.listenerCount('user.signed-up'), `the cancelled once() handler is still on the bus (${WHERE}/event-bus.ts)`).toBe(before);
  });
});
