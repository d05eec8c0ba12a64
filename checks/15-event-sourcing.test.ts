import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { streamIdOf, type AccountState } from '@lesson/15-event-sourcing/account.ts';
import { correctDeposit } from '@lesson/15-event-sourcing/bank.ts';
import { AccountError, WrongExpectedVersionError } from '@lesson/15-event-sourcing/errors.ts';
import {
  appendToStream,
  BEGINNING,
  checkpointOf,
  readAll,
  readStream,
  type Checkpoint,
  type NewEvent,
  type RecordedEvent,
} from '@lesson/15-event-sourcing/event-store.ts';
import type { AccountEvent } from '@lesson/15-event-sourcing/events.ts';
import { loadAccount, saveSnapshot } from '@lesson/15-event-sourcing/snapshots.ts';
import { locationInGradedCode } from '../tooling/course/todo.ts';
import { describe, expect, test } from './support/fixtures.ts';
import { gradedFolder } from './support/lesson.ts';
import { Barrier, sqlState, type PgTestKit } from './support/postgres.ts';
import { within } from './support/polling.ts';

const SLUG = '15-event-sourcing';
const WHERE = gradedFolder(SLUG);
/**
 * Reads by global position wait for every older writing transaction on the server to finish,
 * and other checks write beside these ones: generous, yet seconds, not minutes.
 */
const SETTLED = { timeout: 10_000, interval: 25 };
const RACERS = 8;

// ---------------------------------------------------------------------------------------------
// The check's own view of the store: plain SQL, independent of the lesson's code.

interface EventRowSeen {
  global_position: string;
  transaction_id: string;
  stream_id: string;
  version: string;
  type: string;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
}

/** Applies the lesson's migrations in the test's schema and returns the test's pool. */
async function eventStore(pg: PgTestKit): Promise<pg.Pool> {
  await pg.migrate(SLUG);
  return pg.pool();
}

/**
 * Appends events with the check's own SQL, in one statement (so one transaction, or the caller's
 * open one): the stream's row moves on and the events take the versions after it.
 */
async function insertEvents(db: pg.Pool | pg.ClientBase, streamId: string, events: readonly AccountEvent[]): Promise<EventRowSeen[]> {
  const { rows } = await db.query<EventRowSeen>(
    `WITH head AS (
       INSERT INTO streams AS s (stream_id, version) VALUES ($1, $2::bigint)
       ON CONFLICT (stream_id) DO UPDATE SET version = s.version + $2::bigint
       RETURNING version - $2::bigint AS base
     )
     INSERT INTO events (stream_id, version, type, data)
     SELECT $1, head.base + e.n, e.type, e.data
       FROM head, unnest($3::text[], $4::jsonb[]) WITH ORDINALITY AS e(type, data, n)
      ORDER BY e.n
     RETURNING global_position::text, transaction_id::text, stream_id, version::text, type, data, metadata`,
    [streamId, events.length, events.map((e) => e.type), events.map((e) => JSON.stringify(e.data))],
  );
  return rows;
}

async function eventRows(pg: PgTestKit, streamId?: string): Promise<EventRowSeen[]> {
  return pg.query<EventRowSeen>(
    `SELECT global_position::text, transaction_id::text, stream_id, version::text, type, data, metadata
       FROM events WHERE $1::text IS NULL OR stream_id = $1 ORDER BY global_position`,
    [streamId ?? null],
  );
}

async function streamRow(pg: PgTestKit, streamId: string): Promise<number | undefined> {
  const [row] = await pg.query<{ version: string }>('SELECT version::text FROM streams WHERE stream_id = $1', [streamId]);
  return row ? Number(row.version) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Accounts, as the check expects them to fold (computed here, not by the lesson's code).

const opened = (owner = 'Grace Hopper'): AccountEvent => ({ type: 'AccountOpened', data: { owner } });
const deposited = (amountCents: number, description?: string): AccountEvent => ({
  type: 'MoneyDeposited',
  data: description ? { amountCents, description } : { amountCents },
});
const withdrawn = (amountCents: number): AccountEvent => ({ type: 'MoneyWithdrawn', data: { amountCents } });
const reversed = (depositVersion: number, amountCents: number, reason: string): AccountEvent => ({
  type: 'DepositReversed',
  data: { depositVersion, amountCents, reason },
});

function expectedAccount(accountId: string, events: readonly AccountEvent[]): AccountState {
  let state: AccountState = { accountId, version: 0, status: 'not-opened', owner: null, balanceCents: 0, reversedDeposits: [] };
  for (const event of events) {
    state = { ...state, version: state.version + 1 };
    if (event.type === 'AccountOpened') state = { ...state, status: 'open', owner: event.data.owner };
    if (event.type === 'MoneyDeposited') state = { ...state, balanceCents: state.balanceCents + event.data.amountCents };
    if (event.type === 'MoneyWithdrawn') state = { ...state, balanceCents: state.balanceCents - event.data.amountCents };
    if (event.type === 'DepositReversed') {
      state = {
        ...state,
        balanceCents: state.balanceCents - event.data.amountCents,
        reversedDeposits: [...state.reversedDeposits, event.data.depositVersion],
      };
    }
  }
  return state;
}

/** A generic event for the store's own requirements. */
function note(text: string, metadata?: Record<string, unknown>): NewEvent {
  return metadata ? { type: 'NoteTaken', data: { text }, metadata } : { type: 'NoteTaken', data: { text } };
}

// ---------------------------------------------------------------------------------------------
// Small helpers for outcomes and messages.

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = sqlState(error);
  // A TODO surfacing through another function (loadAccount → readStream) is in the file that throws it.
  const where = error.message.startsWith('TODO: ') ? locationInGradedCode(error.stack) : undefined;
  return `${error.name}: ${error.message}${where ? ` (thrown at ${where})` : ''}${code ? ` (SQLSTATE ${code})` : ''}`;
}

async function outcomeOf<T>(work: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await work };
  } catch (error) {
    return { ok: false, error };
  }
}


/** The lesson's appendToStream, where it is a precondition: a failure says so and names the file. */
async function mustAppend(pool: pg.Pool, streamId: string, expectedVersion: number, events: NewEvent[]): Promise<number> {
  try {
    return await appendToStream(pool, streamId, expectedVersion, events);
  } catch (error) {
    throw new Error(`appendToStream(pool, "${streamId}", ${expectedVersion}, [${events.length} event(s)]) threw ` +
      `${describeError(error)} (${WHERE}/event-store.ts)`, { cause: error });
  }
}

/** The lesson's loadAccount; a failure names both files it depends on. */
async function mustLoad(pool: pg.Pool, accountId: string, situation: string): Promise<AccountState> {
  try {
    return await loadAccount(pool, accountId);
  } catch (error) {
    throw new Error(`loadAccount(pool, "${accountId}") ${situation} threw ${describeError(error)}. It reads the snapshot ` +
      `and the events after it (${WHERE}/snapshots.ts) and folds them with evolve (${WHERE}/account.ts)`, { cause: error });
  }
}

async function mustSnapshot(pool: pg.Pool, account: AccountState): Promise<void> {
  try {
    await saveSnapshot(pool, account);
  } catch (error) {
    throw new Error(`saveSnapshot of "${account.accountId}" at version ${account.version} threw ${describeError(error)} ` +
      `(${WHERE}/snapshots.ts)`, { cause: error });
  }
}

/** Why an append on a one-connection pool fails after an earlier append failed, as far as it can be told. */
function leftoverHint(error: unknown): string {
  if (sqlState(error) === '25P02') {
    return 'The pool\'s one connection came back still inside the failed transaction of the earlier append: ROLLBACK ' +
      'before release() on every error path, the version conflict included.';
  }
  if (error instanceof Error && /timeout exceeded when trying to connect/.test(error.message)) {
    return 'The pool has one connection, and the earlier append never released it: release the client in a finally block.';
  }
  return 'A connection must go back to the pool outside any transaction: ROLLBACK before release() on every error path.';
}

/** What readAll returned, as "stream vN" labels. */
const labels = (events: readonly RecordedEvent[]) => events.map((e) => `${e.streamId} v${e.version}`);

/**
 * A subscriber as the check runs one: reads pages from `checkpoint`, moving it after each event,
 * and collects every event it was given.
 */
class Subscriber {
  readonly seen: RecordedEvent[] = [];
  checkpoint: Checkpoint = BEGINNING;

  constructor(private readonly pool: pg.Pool, private readonly pageSize = 100) {}

  async poll(): Promise<RecordedEvent[]> {
    const from = `{ transactionId: ${this.checkpoint.transactionId}n, globalPosition: ${this.checkpoint.globalPosition}n }`;
    const page = await readAll(this.pool, this.checkpoint, this.pageSize).catch((error: unknown) => {
      throw new Error(`readAll(pool, ${from}, ${this.pageSize}) threw ${describeError(error)} (${WHERE}/event-store.ts)`, { cause: error });
    });
    if (page.length > this.pageSize) {
      throw new Error(`readAll(pool, checkpoint, ${this.pageSize}) returned ${page.length} events: at most limit (${WHERE}/event-store.ts)`);
    }
    for (const event of page) {
      this.seen.push(event);
      this.checkpoint = checkpointOf(event);
    }
    return page;
  }

  /**
   * Polls until `done` holds for what it has seen, or fails with `message` after the deadline. An
   * error from readAll fails at once.
   */
  async until(done: (seen: readonly RecordedEvent[]) => boolean, message: () => string): Promise<void> {
    const deadline = Date.now() + SETTLED.timeout;
    for (;;) {
      await this.poll();
      if (done(this.seen)) return;
      if (Date.now() > deadline) throw new Error(message());
      await sleep(SETTLED.interval);
    }
  }

  count(streamId: string, version: number): number {
    return this.seen.filter((e) => e.streamId === streamId && e.version === version).length;
  }
}

describe.concurrent('15 event-sourcing', () => {
  test('appendToStream stores events at the versions after the expected one, and readStream returns them in order', async ({ pg }) => {
    const pool = await eventStore(pg);
    const stream = 'account-ada';
    const first = await mustAppend(pool, stream, 0, [note('opened', { by: 'teller-7' }), note('first deposit')]);
    expect(first, `appendToStream(pool, "${stream}", 0, [two events]) should return the stream's new version (${WHERE}/event-store.ts)`).toBe(2);

    const rows = await eventRows(pg, stream);
    expect(rows.map((r) => [r.version, r.type, r.data, r.metadata]), 'the table events should hold both events at versions 1 and 2, ' +
      `with their data, and their metadata ({} when none is given) (${WHERE}/event-store.ts)`).toEqual([
      ['1', 'NoteTaken', { text: 'opened' }, { by: 'teller-7' }],
      ['2', 'NoteTaken', { text: 'first deposit' }, {}],
    ]);
    expect(BigInt(rows[0]!.global_position) < BigInt(rows[1]!.global_position), 'the events of a batch should take global ' +
      `positions in the batch's order (${WHERE}/event-store.ts)`).toBe(true);
    expect(await streamRow(pg, stream), `the stream's row in the table streams should be at version 2 (${WHERE}/event-store.ts)`).toBe(2);

    const next = await mustAppend(pool, stream, 2, [note('second deposit')]);
    expect(next, `appending one event at expected version 2 should return 3 (${WHERE}/event-store.ts)`).toBe(3);
    expect(await streamRow(pg, stream), `the stream's row should be at version 3 (${WHERE}/event-store.ts)`).toBe(3);

    const all = await readStream(pool, stream);
    expect(all.map((e) => [e.streamId, e.version, e.type, e.data]), `readStream(pool, "${stream}") should return the ` +
      `three events in version order (${WHERE}/event-store.ts)`).toEqual([
      [stream, 1, 'NoteTaken', { text: 'opened' }],
      [stream, 2, 'NoteTaken', { text: 'first deposit' }],
      [stream, 3, 'NoteTaken', { text: 'second deposit' }],
    ]);
    expect(labels(await readStream(pool, stream, 1)), `readStream(pool, "${stream}", 1) should return the events after ` +
      `version 1 (${WHERE}/event-store.ts)`).toEqual([`${stream} v2`, `${stream} v3`]);
    expect(await readStream(pool, 'account-nobody'), `readStream of a stream without events should return [] ` +
      `(${WHERE}/event-store.ts)`).toEqual([]);
  });

  test('a wrong expected version throws WrongExpectedVersionError with the expected and the actual version, and stores nothing', async ({ pg }) => {
    const pool = await eventStore(pg);
    const stream = 'account-bob';
    await insertEvents(pool, stream, [opened('Bob'), deposited(1_000), deposited(2_000)]);
    await mustAppend(pool, 'account-warm-up', 0, [note('an append that works, before the ones that must not')]);

    const tries: Array<{ expected: number; what: string }> = [
      { expected: 1, what: 'a stale version (the writer read the stream at version 1, two events ago)' },
      { expected: 0, what: 'version 0 ("create the stream") on a stream that already exists' },
      { expected: 4, what: 'a version the stream has not reached' },
    ];
    for (const { expected, what } of tries) {
      const outcome = await outcomeOf(appendToStream(pool, stream, expected, [note('should not be stored')]));
      if (outcome.ok) {
        throw new Error(`appendToStream(pool, "${stream}", ${expected}, …) on a stream at version 3 succeeded (returned ` +
          `${String(outcome.value)}): with ${what} it must refuse. Compare the expected version with the stream's ` +
          `version in the same statement that moves it (${WHERE}/event-store.ts)`);
      }
      const { error } = outcome;
      expect(error instanceof WrongExpectedVersionError, `with ${what}, appendToStream should throw ` +
        `WrongExpectedVersionError (from errors.ts), and threw ${describeError(error)} (${WHERE}/event-store.ts)`).toBe(true);
      const conflict = error as WrongExpectedVersionError;
      expect([conflict.streamId, conflict.expectedVersion, conflict.actualVersion], 'the error should carry the stream, the ' +
        `expected version and the version the stream is actually at (${WHERE}/event-store.ts)`).toEqual([stream, expected, 3]);
    }
    expect((await eventRows(pg, stream)).map((r) => r.version), `a refused append must store nothing (${WHERE}/event-store.ts)`)
      .toEqual(['1', '2', '3']);
    expect(await streamRow(pg, stream), `a refused append must leave the stream at its version (${WHERE}/event-store.ts)`).toBe(3);

    const missing = await outcomeOf(appendToStream(pool, 'account-nobody', 2, [note('should not be stored')]));
    expect(!missing.ok && missing.error instanceof WrongExpectedVersionError, 'appending at expected version 2 to a stream ' +
      `that does not exist should throw WrongExpectedVersionError, and ${missing.ok ? 'it succeeded' : `threw ${describeError(missing.error)}`} ` +
      `(${WHERE}/event-store.ts)`).toBe(true);
    const absent = (missing as { error: WrongExpectedVersionError }).error;
    expect([absent.expectedVersion, absent.actualVersion], `for a stream without events the actual version is 0 (${WHERE}/event-store.ts)`)
      .toEqual([2, 0]);
    expect(await streamRow(pg, 'account-nobody'), `a refused append must not create the stream (${WHERE}/event-store.ts)`).toBeUndefined();
    expect(await appendToStream(pool, stream, 3, [note('fourth')]), `appending at the right version (3) should still work and ` +
      `return 4 (${WHERE}/event-store.ts)`).toBe(4);
  });

  test(`${RACERS} writers racing at one expected version: exactly one wins, the others get WrongExpectedVersionError, and no version is skipped or stored twice`, async ({ pg }) => {
    await eventStore(pg);
    // Each writer is a service instance with a pool of its own, connected before the start, so
    // that all of them reach the database at the same moment when the barrier opens.
    const pools = await Promise.all(Array.from({ length: RACERS }, () => pg.newPoolFor({ max: 1 })));
    await Promise.all(pools.map((pool) => pool.query('SELECT 1')));
    const stream = 'account-contested';

    // Round 1 creates the stream (expected version 0); rounds 2 and 3 extend it.
    for (const expected of [0, 1, 2]) {
      const barrier = new Barrier(RACERS);
      const race = Promise.all(pools.map(async (pool, writer) => {
        await barrier.arrive();
        return outcomeOf(appendToStream(pool, stream, expected, [note(`writer ${writer} at ${expected}`)]));
      }));
      const outcomes = await within(10_000, race, `the race at expected version ${expected} did not finish within 10 s: writers are ` +
        'waiting for a lock on the stream\'s row that a transaction still holds. A loser\'s UPDATE waited for the ' +
        'winner, matched nothing and still locked the row until its transaction ends: on a conflict, ROLLBACK before ' +
        `the connection goes back to the pool (${WHERE}/event-store.ts)`);
      const winners = outcomes.flatMap((o, writer) => (o.ok ? [writer] : []));
      const losers = outcomes.flatMap((o) => (o.ok ? [] : [o.error]));
      if (winners.length === 0) {
        throw new Error(`${RACERS} writers appended at expected version ${expected} at the same moment, and none succeeded; ` +
          `the first threw ${describeError(losers[0])}. One of them must win (${WHERE}/event-store.ts)`);
      }
      expect(winners.length, `${RACERS} writers appended at expected version ${expected} at the same moment, each on its own ` +
        `connection, and ${winners.length} succeeded: exactly one may move the stream from version ${expected}. The version ` +
        'check must be part of the write, inside the appending transaction (UPDATE streams … WHERE version = $expected, or ' +
        `a unique constraint that the losers hit), never a SELECT before it (${WHERE}/event-store.ts)`).toBe(1);
      for (const error of losers) {
        const caughtLate = sqlState(error) === '23505'
          ? ' The unique constraint on (stream_id, version) stopped a writer whose version check had passed: the check ran ' +
            'before the write, outside its transaction, so every racer saw the same version.'
          : '';
        expect(error instanceof WrongExpectedVersionError, `a writer that lost the race at version ${expected} should get ` +
          `WrongExpectedVersionError, and got ${describeError(error)}.${caughtLate} (${WHERE}/event-store.ts)`).toBe(true);
        const { expectedVersion, actualVersion } = error as WrongExpectedVersionError;
        expect([expectedVersion, actualVersion], 'a loser\'s error should report the version it expected and the one the ' +
          `winner left (${WHERE}/event-store.ts)`).toEqual([expected, expected + 1]);
      }
    }

    const rows = await eventRows(pg, stream);
    expect(rows.map((r) => r.version), `after three races the table events should hold versions 1, 2 and 3 of "${stream}", ` +
      `once each (${WHERE}/event-store.ts)`).toEqual(['1', '2', '3']);
    expect(rows.map((r) => r.data.text), 'each stored event should be one race\'s winner, at the version it expected to follow')
      .toEqual([expect.stringMatching(/ at 0$/), expect.stringMatching(/ at 1$/), expect.stringMatching(/ at 2$/)]);
    expect(await streamRow(pg, stream), `the stream's row should be at version 3 (${WHERE}/event-store.ts)`).toBe(3);
  });

  test('an append is all or nothing: a batch that fails part-way stores none of its events and leaves the connection usable', async ({ pg }) => {
    await eventStore(pg);
    // One connection only: if a failed append leaks it, or returns it inside a failed
    // transaction, the next append on this pool shows it.
    const pool = await pg.newPoolFor({ max: 1, connectionTimeoutMillis: 5_000 });
    const stream = 'account-carol';
    await insertEvents(pool, stream, [opened('Carol')]);
    await mustAppend(pool, 'account-warm-up', 0, [note('an append that works, before the ones that fail')]);

    // PostgreSQL cannot store \u0000 in jsonb: the third event fails inside the database.
    const batch = [note('deposit 1'), note('deposit 2'), note('unstorable \u0000 text')];
    const failed = await outcomeOf(within(10_000, appendToStream(pool, stream, 1, batch),
      `appendToStream hung on a batch whose third event the database refuses (${WHERE}/event-store.ts)`));
    expect(failed.ok, 'a batch whose third event PostgreSQL refuses (jsonb cannot hold \\u0000) should make appendToStream ' +
      `reject (${WHERE}/event-store.ts)`).toBe(false);
    const stored = (await eventRows(pg, stream)).map((r) => `v${r.version} ${String(r.data.text ?? r.type)}`);
    expect(stored, 'the batch failed at its third event, and these events are in the table: an append must store all of its ' +
      'events or none. Run the version check and every INSERT on one connection, between BEGIN and COMMIT, and ROLLBACK ' +
      `on any error (${WHERE}/event-store.ts)`).toEqual(['v1 AccountOpened']);
    expect(await streamRow(pg, stream), 'the failed batch moved the stream\'s version in the table streams although none of ' +
      `its events was stored: the version and the events must commit together (${WHERE}/event-store.ts)`).toBe(1);

    // The same connection again, for a refused append and then a good one.
    const conflict = await outcomeOf(within(10_000, appendToStream(pool, stream, 0, [note('stale')]),
      `an append hung after a failed one (${WHERE}/event-store.ts)`));
    if (conflict.ok || !(conflict.error instanceof WrongExpectedVersionError)) {
      throw new Error('after the failed batch, an append at a stale version on the same one-connection pool should throw ' +
        `WrongExpectedVersionError, and ${conflict.ok ? 'it succeeded' : `threw ${describeError(conflict.error)}`}. ` +
        `${conflict.ok ? '' : leftoverHint(conflict.error)} (${WHERE}/event-store.ts)`);
    }
    const next = await outcomeOf(within(10_000, appendToStream(pool, stream, 1, [note('deposit 1')]),
      `an append hung after a refused one (${WHERE}/event-store.ts)`));
    if (!next.ok) {
      throw new Error('after a failed and a refused append on the same one-connection pool, a correct append failed: ' +
        `${describeError(next.error)}. ${leftoverHint(next.error)} (${WHERE}/event-store.ts)`);
    }
    expect(next.value, `the append after the failures should return version 2 (${WHERE}/event-store.ts)`).toBe(2);
  });

  test('an account is rebuilt by replaying its events, and an account without events loads as the initial state', async ({ pg }) => {
    const pool = await eventStore(pg);
    const history = [
      opened('Dorothy'),
      deposited(10_000, 'salary'),
      deposited(2_550),
      withdrawn(3_000),
      deposited(199),
      reversed(3, 2_550, 'card payment charged back'),
      deposited(2_500),
      withdrawn(1),
    ];
    await insertEvents(pool, streamIdOf('dorothy'), history);
    const loaded = await mustLoad(pool, 'dorothy', 'on a stream of eight events');
    expect(loaded, 'loadAccount should fold the account\'s eight events into its state: open, balance 10000 + 2550 - 3000 ' +
      '+ 199 - 2550 + 2500 - 1 cents, the reversed deposit 3 remembered, at version 8. evolve() gives each event its ' +
      `meaning (${WHERE}/account.ts), loadAccount reads the stream and folds it (${WHERE}/snapshots.ts)`).toEqual(expectedAccount('dorothy', history));

    const never = await mustLoad(pool, 'never-opened', 'on an account without events');
    expect(never, 'an account with no events should load as the initial state at version 0, not throw ' +
      `(${WHERE}/snapshots.ts)`).toEqual(expectedAccount('never-opened', []));
  });

  test('a snapshot plus the events after it equals a full replay, from a snapshot of an empty stream too', async ({ pg }) => {
    const pool = await eventStore(pg);
    const id = 'edsger';
    const stream = streamIdOf(id);
    const history = [opened('Edsger'), deposited(5_000), withdrawn(1_200), deposited(700), deposited(300), withdrawn(2_000), deposited(45)];
    const snapshotRow = async () =>
      (await pg.query<{ version: string; state: AccountState }>('SELECT version::text, state FROM snapshots WHERE stream_id = $1', [stream]))[0];

    // Boundary: a snapshot taken before the first event.
    await mustSnapshot(pool, await mustLoad(pool, id, 'on an account without events'));
    const empty = await snapshotRow();
    expect(empty?.version, `saveSnapshot of an account with no events should store a snapshot at version 0 in the table ` +
      `snapshots, for stream "${stream}" (${WHERE}/snapshots.ts)`).toBe('0');
    await insertEvents(pool, stream, history.slice(0, 4));
    expect(await mustLoad(pool, id, 'with a snapshot at version 0'), 'with a snapshot at version 0 and four events after it, loadAccount should equal the ' +
      'full replay of the four events. Still at version 0? Then the events after the snapshot were not applied ' +
      `(${WHERE}/snapshots.ts)`).toEqual(expectedAccount(id, history.slice(0, 4)));

    // A snapshot in the middle of the stream, then more events.
    await mustSnapshot(pool, await mustLoad(pool, id, 'with a snapshot at version 0 and four events'));
    const middle = await snapshotRow();
    expect([middle?.version, middle?.state.version, middle?.state.balanceCents], 'after saveSnapshot at version 4, the snapshots ' +
      'row should be at version 4 and hold the state at version 4 (a newer snapshot replaces the older one) ' +
      `(${WHERE}/snapshots.ts)`).toEqual(['4', 4, expectedAccount(id, history.slice(0, 4)).balanceCents]);
    await insertEvents(pool, stream, history.slice(4));
    const loaded = await outcomeOf(loadAccount(pool, id));
    if (!loaded.ok) {
      throw new Error(`loadAccount with a snapshot at version 4 and three later events threw ${describeError(loaded.error)}. ` +
        `Start from the snapshot's state and apply only the events after its version: readStream(pool, stream, snapshot.version) ` +
        `(${WHERE}/snapshots.ts)`);
    }
    expect(loaded.value, 'a snapshot at version 4 plus events 5 to 7 should give exactly the state a full replay of the seven ' +
      'events gives. A higher balance means events the snapshot already holds were applied again; a lower version means the ' +
      `events after the snapshot were not applied (${WHERE}/snapshots.ts)`).toEqual(expectedAccount(id, history));

    // Boundary: a snapshot at the stream's last version, nothing after it.
    await mustSnapshot(pool, loaded.value);
    expect(await mustLoad(pool, id, 'with a snapshot at its last version'), 'with a snapshot at the stream\'s last version, loadAccount should return that state ' +
      `(${WHERE}/snapshots.ts)`).toEqual(expectedAccount(id, history));
  });

  test('loadAccount starts from the latest snapshot instead of replaying the whole stream', async ({ pg }) => {
    const pool = await eventStore(pg);
    const id = 'frances';
    const stream = streamIdOf(id);
    const history = [opened('Frances'), deposited(8_000), withdrawn(500), deposited(250), deposited(1_000), withdrawn(750)];
    await insertEvents(pool, stream, history.slice(0, 4));
    await mustSnapshot(pool, await mustLoad(pool, id, 'on a stream of four events'));
    const [row] = await pg.query<{ version: string }>('SELECT version::text FROM snapshots WHERE stream_id = $1', [stream]);
    expect(row?.version, `saveSnapshot should store the state at version 4 in the table snapshots (${WHERE}/snapshots.ts)`).toBe('4');

    // Mark the snapshot: a load that starts from it shows the mark, a full replay cannot.
    const MARK = 1_000_000;
    await pg.query("UPDATE snapshots SET state = jsonb_set(state, '{balanceCents}', to_jsonb((state->>'balanceCents')::bigint + $2)) WHERE stream_id = $1", [stream, MARK]);
    await insertEvents(pool, stream, history.slice(4));
    const loaded = await outcomeOf(loadAccount(pool, id));
    if (!loaded.ok) throw new Error(`loadAccount with a snapshot at version 4 and two later events threw ${describeError(loaded.error)} (${WHERE}/snapshots.ts)`);
    const replayed = expectedAccount(id, history);
    expect(loaded.value.version, 'loadAccount should apply the two events after the snapshot: the state should be at version 6 ' +
      `(${WHERE}/snapshots.ts)`).toBe(6);
    expect(loaded.value.balanceCents - replayed.balanceCents, 'the check added 1000000 cents to the balance inside the stored ' +
      'snapshot, and the loaded balance does not show it: loadAccount replayed the stream from the first event and never used ' +
      'the snapshot. Read the row from snapshots, start from its state (parseSnapshot) and read only the events after its ' +
      `version (${WHERE}/snapshots.ts)`).toBe(MARK);
  });

  test('the database refuses to UPDATE, DELETE or TRUNCATE stored events, with an error', async ({ pg }) => {
    const pool = await eventStore(pg);
    const stream = streamIdOf('grace');
    await insertEvents(pool, stream, [opened('Grace'), deposited(100_000)]);
    const before = await eventRows(pg);
    const MIGRATION = `${WHERE}/migrations/002_immutable_events.sql`;

    const attempts = [
      { sql: `UPDATE events SET data = '{"amountCents": 10000}' WHERE stream_id = $1 AND version = 2`, params: [stream], what: 'UPDATE' },
      { sql: 'DELETE FROM events WHERE stream_id = $1 AND version = 2', params: [stream], what: 'DELETE' },
      { sql: 'TRUNCATE events', params: [], what: 'TRUNCATE' },
    ];
    for (const { sql, params, what } of attempts) {
      const outcome = await outcomeOf(pool.query(sql, params));
      if (outcome.ok) {
        const changed = outcome.value.rowCount ?? 0;
        throw new Error(changed === 0 && what !== 'TRUNCATE'
          ? `${sql} on an existing event reported 0 rows changed and no error. The row is safe, but the code that tried believes ` +
            'its change went through: a BEFORE trigger that returns NULL skips rows silently. RAISE EXCEPTION instead ' +
            `(${MIGRATION})`
          : `"${sql}" went through: stored events must be immutable, and the database itself must refuse to change them, ` +
            `whatever code or person tries. Add a trigger that raises on ${what === 'TRUNCATE' ? 'TRUNCATE (a statement trigger: ' +
            'TRUNCATE fires no row triggers)' : 'UPDATE and DELETE'} (${MIGRATION})`);
      }
      const code = sqlState(outcome.error);
      expect(['42P01', '42703', '42601'].includes(code ?? ''), `"${sql}" failed for a reason that is not immutability: ` +
        `${describeError(outcome.error)}. Keep the table events as 001_event_store.sql creates it (${MIGRATION})`).toBe(false);
    }
    expect(await eventRows(pg), `the stored events should be exactly as they were (${MIGRATION})`).toEqual(before);

    const appended = await outcomeOf(insertEvents(pool, stream, [withdrawn(500)]));
    expect(appended.ok, `appending must still work, and an INSERT failed: ${appended.ok ? '' : describeError(appended.error)}. ` +
      `Refuse UPDATE, DELETE and TRUNCATE, not INSERT (${MIGRATION})`).toBe(true);
  });

  test('a correction is new compensating events: the wrong deposit stays in the history as it was', async ({ pg }) => {
    const pool = await eventStore(pg);
    const id = 'hedy';
    const stream = streamIdOf(id);
    const history = [opened('Hedy'), deposited(100_000, 'salary'), deposited(2_500, 'refund'), withdrawn(4_000)];
    await insertEvents(pool, stream, history);
    const before = await eventRows(pg, stream);

    const corrected = await outcomeOf(correctDeposit(pool, id, 2, 10_000, 'typed with an extra zero'));
    if (!corrected.ok) {
      throw new Error(`correctDeposit(pool, "${id}", 2, 10000, reason) threw ${describeError(corrected.error)}. A correction ` +
        `does not touch the deposit: append a DepositReversed for it and a new MoneyDeposited with the right amount ` +
        `(${WHERE}/bank.ts)`);
    }
    const after = await eventRows(pg, stream);
    expect(after.slice(0, 4), `the four events recorded before the correction must be exactly as they were, the wrong deposit ` +
      `(version 2, 100000 cents) included: history is not rewritten (${WHERE}/bank.ts)`).toEqual(before);
    expect(after.slice(4).map((r) => [r.version, r.type, r.type === 'DepositReversed' ? r.data : r.data.amountCents]), 'the ' +
      'correction should append two events: DepositReversed { depositVersion: 2, amountCents: 100000, reason } and ' +
      `MoneyDeposited of 10000 cents (${WHERE}/bank.ts)`).toEqual([
      ['5', 'DepositReversed', { depositVersion: 2, amountCents: 100_000, reason: 'typed with an extra zero' }],
      ['6', 'MoneyDeposited', 10_000],
    ]);
    expect(corrected.value, `correctDeposit should return the new version, 6 (${WHERE}/bank.ts)`).toBe(6);
    const account = await mustLoad(pool, id, 'after the correction');
    expect([account.balanceCents, account.reversedDeposits], 'after the correction the balance should be 10000 + 2500 - 4000 ' +
      'cents and deposit 2 should be marked reversed').toEqual([8_500, [2]]);

    for (const [version, why] of [[2, 'a deposit that has already been corrected'], [4, 'an event that is a withdrawal, not a deposit'], [9, 'an event the stream does not have']] as const) {
      const refused = await outcomeOf(correctDeposit(pool, id, version, 1_000, 'again'));
      expect(!refused.ok && refused.error instanceof AccountError, `correcting ${why} (version ${version}) should throw ` +
        `AccountError, and ${refused.ok ? 'it succeeded' : `threw ${describeError(refused.error)}`} (${WHERE}/bank.ts)`).toBe(true);
    }
    expect((await eventRows(pg, stream)).length, `a refused correction must append nothing (${WHERE}/bank.ts)`).toBe(6);

    // Boundary: the right amount is 0, so the deposit should not have been recorded at all.
    const toZero = await outcomeOf(correctDeposit(pool, id, 3, 0, 'refund was never paid'));
    if (!toZero.ok) {
      throw new Error(`correcting deposit 3 to 0 cents (it should not have been recorded at all) threw ` +
        `${describeError(toZero.error)}: 0 is a valid corrected amount (${WHERE}/bank.ts)`);
    }
    expect((await eventRows(pg, stream)).slice(6).map((r) => [r.version, r.type, r.data]), 'correcting deposit 3 to 0 should ' +
      `append only its DepositReversed, and no deposit of 0 cents (${WHERE}/bank.ts)`).toEqual([
      ['7', 'DepositReversed', { depositVersion: 3, amountCents: 2_500, reason: 'refund was never paid' }],
    ]);
    expect((await mustLoad(pool, id, 'after the second correction')).balanceCents, 'after reversing the refund too, the balance should be 10000 - 4000 cents').toBe(6_000);
  });

  test('readAll returns the events of every stream after a checkpoint, once each and in order, a page at a time', async ({ pg }) => {
    const pool = await eventStore(pg);
    // Four transactions, interleaving two streams.
    const appended = [
      ...(await insertEvents(pool, 'account-a', [opened('A'), deposited(100)])),
      ...(await insertEvents(pool, 'account-b', [opened('B')])),
      ...(await insertEvents(pool, 'account-a', [withdrawn(50)])),
      ...(await insertEvents(pool, 'account-b', [deposited(70)])),
    ].map((row) => `${row.stream_id} v${row.version}`);

    const subscriber = new Subscriber(pool, 2);
    await subscriber.until((seen) => seen.length >= appended.length, () => `reading pages of 2 from BEGINNING, moving the checkpoint ` +
      `after each event, returned ${subscriber.seen.length} of the ${appended.length} committed events: ` +
      `[${labels(subscriber.seen).join(', ')}]. readAll should return the events after the checkpoint, whatever their stream ` +
      `(${WHERE}/event-store.ts)`);
    expect(labels(subscriber.seen), 'every committed event should be read exactly once, in the order of the transactions that ' +
      `appended them (with the checkpoint compared as (transactionId, globalPosition)) (${WHERE}/event-store.ts)`).toEqual(appended);
    const first = subscriber.seen[0]!;
    expect(typeof first.globalPosition === 'bigint' && typeof first.transactionId === 'bigint', 'globalPosition and transactionId ' +
      `should be bigints (toRecordedEvent does it) (${WHERE}/event-store.ts)`).toBe(true);
    expect(await subscriber.poll(), `at the end, readAll should return [] (${WHERE}/event-store.ts)`).toEqual([]);
  });

  test("a subscriber never skips an event whose transaction commits after a later event's", async ({ pg }) => {
    const pool = await eventStore(pg);
    await insertEvents(pool, 'account-early', [opened('Early')]);
    const subscriber = new Subscriber(pool);
    await subscriber.until((seen) => seen.length >= 1, () => `readAll(pool, BEGINNING) never returned the one committed event ` +
      `(${WHERE}/event-store.ts)`);

    // A slow append takes its global position first and stays uncommitted…
    const slow = await pg.connect();
    await slow.query('BEGIN');
    const [slowEvent] = await insertEvents(slow, 'account-slow', [opened('Slow')]);
    // …while a fast one takes the next position and commits.
    const [fastEvent] = await insertEvents(pool, 'account-fast', [opened('Fast')]);
    const slowAt = slowEvent!.global_position;
    const fastAt = fastEvent!.global_position;
    expect(BigInt(slowAt) < BigInt(fastAt), 'check precondition: the uncommitted event holds the lower position').toBe(true);

    const duringSlow = await subscriber.poll();
    await slow.query('COMMIT');
    await subscriber.until(
      (seen) => seen.some((e) => e.streamId === 'account-slow') && seen.some((e) => e.streamId === 'account-fast'),
      () => `the event at global position ${slowAt} was appended in a transaction that committed after the one at position ` +
        `${fastAt}, and the subscriber never received it. While it was in flight, readAll returned ` +
        `[${labels(duringSlow).join(', ')}]; the checkpoint moved past ${slowAt}, and a position below the checkpoint is never ` +
        'read again. Return only events of transactions older than every transaction still in flight: ' +
        `transaction_id < pg_snapshot_xmin(pg_current_snapshot()) (${WHERE}/event-store.ts)`,
    );
    expect(labels(subscriber.seen), 'across the reads, each event should arrive exactly once, in position order ' +
      `(${WHERE}/event-store.ts)`).toEqual(['account-early v1', 'account-slow v1', 'account-fast v1']);
  });

  test('a subscriber never skips a late commit when a newer transaction took a lower global position', async ({ pg }) => {
    const pool = await eventStore(pg);
    // appendToStream writes the streams row first and the events after it, so a transaction can
    // take its id before another and its global position after it. Play that interleaving out:
    const older = await pg.connect();
    const newer = await pg.connect();
    await older.query('BEGIN');
    await older.query("INSERT INTO streams (stream_id, version) VALUES ('account-older', 1)"); // takes a transaction id
    await newer.query('BEGIN');
    const [newerEvent] = await insertEvents(newer, 'account-newer', [opened('Newer')]); // newer id, lower position
    const [olderEvent] = await older.query<EventRowSeen>(
      `INSERT INTO events (stream_id, version, type, data) VALUES ('account-older', 1, 'AccountOpened', '{"owner": "Older"}')
       RETURNING global_position::text, transaction_id::text`,
    ).then((result) => result.rows);
    await older.query('COMMIT');
    const ids = [BigInt(olderEvent!.transaction_id), BigInt(newerEvent!.transaction_id)];
    const positions = [BigInt(olderEvent!.global_position), BigInt(newerEvent!.global_position)];
    expect(ids[0]! < ids[1]! && positions[0]! > positions[1]!, 'check precondition: the older transaction holds the higher position').toBe(true);

    // The older transaction's event is committed and below every transaction in flight: a reader gets it now.
    const subscriber = new Subscriber(pool);
    await subscriber.until((seen) => seen.some((e) => e.streamId === 'account-older'), () => 'the committed event of ' +
      `transaction ${ids[0]} (position ${positions[0]}) was never returned by readAll, although every transaction older ` +
      `than it had finished (${WHERE}/event-store.ts)`);
    await newer.query('COMMIT');
    await subscriber.until((seen) => seen.some((e) => e.streamId === 'account-newer'), () => `transaction ${ids[1]} took global ` +
      `position ${positions[1]} and committed after the subscriber had read position ${positions[0]} (from the older ` +
      `transaction ${ids[0]}), and its event was never received: [${labels(subscriber.seen).join(', ')}]. The xmin guard ` +
      'alone is not enough when the checkpoint is a global position, because a newer transaction can hold a lower ' +
      'position. Order by (transaction_id, global_position) and compare the checkpoint as that pair ' +
      `(${WHERE}/event-store.ts)`);
    expect([subscriber.count('account-older', 1), subscriber.count('account-newer', 1)], 'each event should arrive exactly once ' +
      `(${WHERE}/event-store.ts)`).toEqual([1, 1]);
  });
});
