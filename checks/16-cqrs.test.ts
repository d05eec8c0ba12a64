import { Partitioners, type IHeaders } from 'kafkajs';
import type pg from 'pg';
import { deposit, openAccount, withdraw, type CommandResult } from '@lesson/16-cqrs/accounts.ts';
import { rebuildAccountProjection, startAccountProjection, type ProjectionOptions, type RunningProjection } from '@lesson/16-cqrs/projection.ts';
import { getAccount, type AccountAnswer } from '@lesson/16-cqrs/queries.ts';
import { startRelay } from '@lesson/16-cqrs/relay.ts';
import { describe, expect, test, vi } from './support/fixtures.ts';
import { CHECK_GROUP_TIMINGS, groupTimingsEnv, headerText, type KafkaTestKit } from './support/kafka.ts';
import { gradedFolder } from './support/lesson.ts';
import type { PgTestKit } from './support/postgres.ts';
import type { LessonProcess, ProcessGroup } from './support/processes.ts';
import { serviceEnv } from './support/services.ts';
import { within } from './support/polling.ts';

const SLUG = '16-cqrs';
const WHERE = gradedFolder(SLUG);
const PROJECTION = `${WHERE}/projection.ts`;
const QUERIES = `${WHERE}/queries.ts`;

// ---------------------------------------------------------------------------------------------
// The world of one requirement: its own schema (event store + read model), its own topic and
// group, and the lesson's relay publishing the event store to the topic. Commands are the
// lesson's own (accounts.ts); everything the check asserts it reads itself, with SQL.
// ---------------------------------------------------------------------------------------------

interface World {
  pg: PgTestKit;
  kafka: KafkaTestKit;
  /** The check's pool: commands, and reading the tables from the server's side. */
  pool: pg.Pool;
  topic: string;
  groupId: string;
  partitions: number;
  relayErrors: string[];
}

/** A topic of the test's own (deleted afterwards), ready to produce to. */
async function createTopic(kafka: KafkaTestKit, partitions: number): Promise<string> {
  const topic = kafka.topicName('account-events');
  const admin = await kafka.adminFor(topic);
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
  } catch (error) {
    // A busy broker can answer the leader lookup before its metadata has the new topic; wait below instead.
    if ((error as { type?: unknown }).type !== 'UNKNOWN_TOPIC_OR_PARTITION') throw error;
  }
  await vi.waitFor(async () => {
    const { topics: [metadata] } = await admin.fetchTopicMetadata({ topics: [topic] });
    if (metadata?.partitions.length !== partitions || metadata.partitions.some((p) => p.leader < 0)) throw new Error(`topic ${topic} has no leaders yet`);
  }, { timeout: 10_000, interval: 100 });
  return topic;
}

async function world(pg: PgTestKit, kafka: KafkaTestKit, partitions = 3): Promise<World> {
  const [pool, topic] = await Promise.all([pg.pool(), createTopic(kafka, partitions)]);
  await pg.migrate(SLUG);
  const relayErrors: string[] = [];
  const relay = await startRelay({
    pool: await pg.newPoolFor({ max: 2 }),
    kafka: kafka.client('check-relay'),
    topic,
    pollIntervalMs: 20,
    onError: (error) => void relayErrors.push(error instanceof Error ? error.message : String(error)),
  });
  kafka.cleanup(() => relay.stop());
  return { pg, kafka, pool, topic, groupId: kafka.groupId('account-balances'), partitions, relayErrors };
}

/** One instance of the learner's projection, in this process, on a pool and a client of its own. */
async function startProjection(w: World, name: string, extra: Partial<ProjectionOptions> = {}): Promise<RunningProjection> {
  const projection = await startAccountProjection({
    pool: await w.pg.newPoolFor({ max: 4 }),
    kafka: w.kafka.client(name),
    topic: w.topic,
    groupId: w.groupId,
    timings: { ...CHECK_GROUP_TIMINGS },
    onMalformed: () => {},
    ...extra,
  });
  let stopped: Promise<void> | undefined;
  const stop = () => (stopped ??= projection.stop());
  w.kafka.cleanup(stop);
  return { stop };
}

function projectionEnv(w: World, extra: Record<string, string> = {}): Record<string, string> {
  return { ...w.pg.env, ...serviceEnv('kafka'), ...groupTimingsEnv(), ACCOUNT_TOPIC: w.topic, PROJECTION_GROUP: w.groupId, ...extra };
}

// ---------------------------------------------------------------------------------------------
// Accounts placed on chosen partitions (the relay keys by account id with the default partitioner).
// ---------------------------------------------------------------------------------------------

const partitioner = Partitioners.DefaultPartitioner();

function partitionOf(accountId: string, partitions: number): number {
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({
    partitionErrorCode: 0, partitionId, leader: 0, replicas: [0], isr: [0],
  }));
  return partitioner({ topic: 'account-events', partitionMetadata, message: { key: accountId, value: null } });
}

/** `perPartition[p]` account ids that land on partition p, named after `prefix`. */
function accountsOn(prefix: string, partitions: number, perPartition: number[]): string[][] {
  const chosen = perPartition.map(() => [] as string[]);
  for (let i = 1; chosen.some((ids, p) => ids.length < perPartition[p]!); i++) {
    const id = `${prefix}-${i}`;
    const p = partitionOf(id, partitions);
    if (chosen[p]!.length < perPartition[p]!) chosen[p]!.push(id);
  }
  return chosen;
}

/** Opens each account and makes `deposits` deposits into it; every amount in the test is different. */
let nextAmount = 1_000;
async function fill(w: World, accountIds: string[], deposits: number): Promise<Map<string, CommandResult>> {
  const last = new Map<string, CommandResult>();
  for (const accountId of accountIds) {
    last.set(accountId, await openAccount(w.pool, { accountId, owner: `owner of ${accountId}` }));
    for (let i = 0; i < deposits; i++) last.set(accountId, await deposit(w.pool, { accountId, amountCents: (nextAmount += 7) }));
  }
  return last;
}

// ---------------------------------------------------------------------------------------------
// What the tables hold, read by the check, and what the events say they should hold.
// ---------------------------------------------------------------------------------------------

interface BalanceRow {
  account_id: string;
  owner: string;
  balance_cents: string;
  transactions: number;
  version: number;
  last_position: string;
  opened_at: Date;
  updated_at: Date;
}

interface EventRow {
  global_position: string;
  stream_id: string;
  stream_version: number;
  type: string;
  data: { accountId: string; owner?: string; amountCents?: number };
  recorded_at: Date;
}

const balances = (w: World) => w.pg.rows<BalanceRow>('account_balances', 'account_id');
const storedEvents = (w: World) => w.pg.rows<EventRow>('events', 'global_position');

/** Checkpoint offset and position per partition, from the table. */
async function checkpoints(w: World): Promise<Map<number, { offset: number; position: number }>> {
  const rows = await w.pg.query<{ partition: number; kafka_offset: string; global_position: string }>(
    'SELECT partition, kafka_offset, global_position FROM projection_checkpoints WHERE topic = $1', [w.topic]);
  return new Map(rows.map((r) => [r.partition, { offset: Number(r.kafka_offset), position: Number(r.global_position) }]));
}

/** The read model rows the events add up to, computed here, independently of the lesson's code. */
function expectedBalances(events: EventRow[]): BalanceRow[] {
  const rows = new Map<string, BalanceRow>();
  for (const e of events) {
    if (e.type === 'AccountOpened') {
      rows.set(e.stream_id, {
        account_id: e.stream_id, owner: e.data.owner!, balance_cents: '0', transactions: 0, version: e.stream_version,
        last_position: e.global_position, opened_at: e.recorded_at, updated_at: e.recorded_at,
      });
      continue;
    }
    const row = rows.get(e.stream_id)!;
    const delta = e.type === 'MoneyDeposited' ? e.data.amountCents! : -e.data.amountCents!;
    rows.set(e.stream_id, {
      ...row, balance_cents: String(Number(row.balance_cents) + delta), transactions: row.transactions + 1,
      version: e.stream_version, last_position: e.global_position, updated_at: e.recorded_at,
    });
  }
  return [...rows.values()].sort((a, b) => (a.account_id < b.account_id ? -1 : 1));
}

/** A readable list of how the read model differs from what the events add up to. */
function differences(actual: BalanceRow[], expected: BalanceRow[], source = 'the events'): string {
  const lines: string[] = [];
  const byId = new Map(actual.map((row) => [row.account_id, row]));
  for (const want of expected) {
    const got = byId.get(want.account_id);
    byId.delete(want.account_id);
    if (!got) {
      lines.push(`${want.account_id}: missing from account_balances`);
    } else if (got.balance_cents !== want.balance_cents || got.transactions !== want.transactions) {
      lines.push(`${want.account_id}: ${got.balance_cents} cents after ${got.transactions} transactions; ${source} add up to ` +
        `${want.balance_cents} cents after ${want.transactions}`);
    } else if (got.last_position !== want.last_position || got.version !== want.version) {
      lines.push(`${want.account_id}: at version ${got.version} (position ${got.last_position}); its last event is version ${want.version} (position ${want.last_position})`);
    }
  }
  for (const extra of byId.values()) lines.push(`${extra.account_id}: in account_balances, but not opened by ${source}`);
  return lines.length > 0 ? lines.map((line) => `  ${line}`).join('\n') : '  (the rows differ in their timestamps or owner)';
}

async function expectExact(w: World, when: string, advice: string): Promise<void> {
  const [actual, events] = await Promise.all([balances(w), storedEvents(w)]);
  const expected = expectedBalances(events);
  expect(actual, `${when}, account_balances does not match the ${events.length} events in the store:\n` +
    `${differences(actual, expected)}\n${advice}`).toEqual(expected);
}

// ---------------------------------------------------------------------------------------------
// Waiting, with deadlines.
// ---------------------------------------------------------------------------------------------

/** Waits until the relay has published every event in the store. */
async function published(w: World): Promise<void> {
  await vi.waitFor(async () => {
    const [row] = await w.pg.query<{ behind: boolean }>(
      `SELECT coalesce((SELECT max(global_position) FROM events), 0) > coalesce((SELECT global_position FROM relay_positions WHERE topic = $1), 0) AS behind`,
      [w.topic]);
    if (row?.behind) throw new Error(`the relay (given code) has not published the event store to ${w.topic}: ${w.relayErrors.at(-1) ?? 'no error reported'}`);
  }, { timeout: 15_000, interval: 25 });
}

/** Waits until the relay has published everything and the projection's checkpoints reach the end of every partition. */
async function caughtUp(w: World, failure: () => string, timeout = 15_000): Promise<void> {
  await published(w);
  const ends = await w.kafka.latestOffsets(w.topic);
  await vi.waitFor(async () => {
    const stored = await checkpoints(w);
    const behind = [...ends].filter(([partition, end]) => end > 0 && (stored.get(partition)?.offset ?? -1) < end - 1);
    if (behind.length > 0) {
      const where = behind.map(([p, end]) => `partition ${p}: checkpoint at offset ${stored.get(p)?.offset ?? 'none'}, last record at ${end - 1}`).join('; ');
      throw new Error(w.kafka.withHandlerErrors(`${failure()}\n(${where})`));
    }
  }, { timeout, interval: 50 });
}


/** The backends waiting, directly or through others, on a lock that `pid` holds. */
async function blockedBehind(pg: PgTestKit, pid: number): Promise<number[]> {
  const rows = await pg.query<{ pid: number }>(
    `WITH RECURSIVE chain(pid) AS (
       SELECT a.pid FROM pg_stat_activity a WHERE $1::int = ANY(pg_blocking_pids(a.pid))
       UNION
       SELECT a.pid FROM pg_stat_activity a JOIN chain c ON c.pid = ANY(pg_blocking_pids(a.pid))
     ) SELECT pid FROM chain`,
    [pid]);
  return rows.map((r) => r.pid);
}

/** A transaction of the check's own holding one account_balances row: the projection waits there. */
async function holdAccountRow(pg: PgTestKit, accountId: string): Promise<{ pid: number; release(): Promise<void> }> {
  const client = await pg.connect();
  const { rows: [me] } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  await client.query('BEGIN');
  const { rowCount } = await client.query('SELECT 1 FROM account_balances WHERE account_id = $1 FOR UPDATE', [accountId]);
  if (rowCount !== 1) throw new Error(`the check could not find ${accountId} in account_balances to hold it`);
  let released: Promise<void> | undefined;
  return { pid: me!.pid, release: () => (released ??= client.query('COMMIT').then(() => undefined)) };
}

/**
 * Commits offsets for a stopped group, as `kafka-consumer-groups.sh --reset-offsets` would. (kafkajs's
 * admin.setOffsets does the same through a consumer with the default 5 s fetch wait; this one is quick.)
 */
async function moveGroupOffsets(w: World, offsets: Map<number, number>): Promise<void> {
  const consumer = w.kafka.client('check-offsets').consumer({ groupId: w.groupId, allowAutoTopicCreation: false, ...CHECK_GROUP_TIMINGS });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: w.topic });
    await new Promise<void>((resolve, reject) => {
      // Seeks are committed (auto-commit is on) before the first fetch, which then finds every partition paused.
      consumer.on(consumer.events.FETCH, () => resolve());
      consumer.run({ eachBatchAutoResolve: false, eachBatch: async () => {} }).catch(reject);
      consumer.pause([{ topic: w.topic }]);
      for (const [partition, offset] of offsets) consumer.seek({ topic: w.topic, partition, offset: String(offset) });
    });
  } finally {
    await consumer.disconnect();
  }
  const committed = await w.kafka.committedOffsets(w.groupId, w.topic);
  expect([...committed].sort(), 'the check could not move the group\'s committed offsets').toEqual([...offsets].sort());
}

async function getJson(url: string): Promise<{ status: number; body: AccountAnswer & { total?: number } }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  const body = (await response.json()) as AccountAnswer & { total?: number; error?: string };
  if (response.status >= 500) throw new Error(`GET ${new URL(url).pathname}${new URL(url).search} failed with ${response.status}: ${body.error} (${QUERIES})`);
  return { status: response.status, body };
}

function describeExit(p: LessonProcess, exit: { code: number | null; signal: NodeJS.Signals | null }): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}:\n${p.output().trim().split('\n').slice(-8).join('\n')}`;
}

/**
 * The crash requirements: 30 events (10 per partition) are on the topic; projection-main.ts runs
 * with a crash hook of read-model.ts set to 15 and kills itself there. The tables must then hold
 * exactly what the checkpoints cover, and a restarted projection must end with every event applied once.
 */
async function crashAndRestart(pg: PgTestKit, kafka: KafkaTestKit, procs: ProcessGroup, hook: string, when: string): Promise<void> {
  const w = await world(pg, kafka);
  await fill(w, accountsOn('acc', w.partitions, [2, 2, 2]).flat(), 4);
  await published(w);

  const projection = procs.start(SLUG, 'projection-main.ts', { env: projectionEnv(w, { [hook]: '15' }), name: `projection-main.ts (${hook}=15)` });
  await projection.waitForOutput(/simulated crash|consuming/, 'started', 25_000).catch((error: Error) => {
    // The entrypoint prints a one-line reason; a TODO it reports can only be projection.ts's.
    throw /^TODO: [\w.]+$/.test(error.message) ? new Error(`${error.message} (${PROJECTION})`) : error;
  });
  const exit = await within(20_000, projection.exited, () => kafka.withHandlerErrors(`projection-main.ts with ${hook}=15 ` +
    `should have killed itself ${when}, and it is still running. Apply events with applyAccountEvent and store each ` +
    `checkpoint with saveCheckpoint (read-model.ts), inside the batch's transaction (${PROJECTION}). Its output:\n` +
    `${projection.output().trim()}`));
  expect(exit.signal, `projection-main.ts with ${hook}=15 should have been killed by its crash hook ${when}, but it ` +
    `${describeExit(projection, exit)} (${PROJECTION})`).toBe('SIGKILL');

  // The read model must hold exactly the events the checkpoints cover: no more, no less.
  const [actual, events, stored] = await Promise.all([balances(w), storedEvents(w), checkpoints(w)]);
  const covered = events.filter((e) => Number(e.global_position) <= (stored.get(partitionOf(e.stream_id, w.partitions))?.position ?? 0));
  const expected = expectedBalances(covered);
  const where = [...stored].map(([p, c]) => `partition ${p} at offset ${c.offset} (position ${c.position})`).join('; ') || 'none';
  expect(actual, `after a crash ${when}, the read model and the checkpoints disagree. The checkpoints (${where}) cover ` +
    `${covered.length} of the ${events.length} events, and account_balances should hold exactly those:\n` +
    `${differences(actual, expected)}\nA read model ahead of its checkpoint gets those events applied again on restart; one ` +
    'behind it has lost them. Apply a batch and store its checkpoint in ONE transaction, and commit once, after both ' +
    `(${PROJECTION})`).toEqual(expected);

  await startProjection(w, 'projection-after-the-crash');
  await caughtUp(w, () => `after the crash, a restarted projection did not catch up with the topic (${PROJECTION})`);
  await expectExact(w, `after a crash ${when} and a restart`, 'A crash before COMMIT must undo both the batch and its checkpoint, ' +
    `and the restart must begin just after the last committed checkpoint (${PROJECTION})`);
}

describe.concurrent('16 cqrs', () => {
  test('queries answer from the read model alone: with the event store locked, every account is still answered', async ({ pg, kafka }) => {
    const w = await world(pg, kafka);
    const last = await fill(w, ['ada', 'grace', 'edsger'], 2);
    last.set('grace', await withdraw(w.pool, { accountId: 'grace', amountCents: 500 }));
    await startProjection(w, 'projection');
    await caughtUp(w, () => `the projection did not bring account_balances up to date with the events (${PROJECTION})`);
    const expected = new Map(expectedBalances(await storedEvents(w)).map((row) => [row.account_id, row]));

    // The query side's connections are open before the lock is taken: only the query itself is timed.
    const queries = await pg.newPoolFor({ max: 4 });
    for (const client of await Promise.all(Array.from({ length: 4 }, () => queries.connect()))) client.release();
    const locker = await pg.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE events, streams, relay_positions IN ACCESS EXCLUSIVE MODE');
    try {
      const ids = [...last.keys(), 'nobody'];
      const answers = await within(5_000, Promise.all(ids.map((id) => getAccount(queries, id, last.get(id)?.position))), () =>
        'with the event store tables (events, streams) locked by another transaction, getAccount did not answer within 5 s: ' +
        'it reads them. The query side answers from the read model (account_balances) alone; the event store is the ' +
        `command side's, and the read model already holds everything a query needs (${QUERIES})`);
      for (const [index, id] of ids.entries()) {
        const answer = answers[index]!;
        const row = expected.get(id);
        if (!row) {
          expect(answer, `an account that does not exist is answered with account: null and position 0 (${QUERIES})`)
            .toMatchObject({ account: null, position: 0 });
          continue;
        }
        expect(answer.account, `getAccount("${id}") should return the account as account_balances has it (${QUERIES})`).toMatchObject({
          accountId: id, owner: row.owner, balanceCents: Number(row.balance_cents), transactions: row.transactions, version: row.version,
        });
        expect(answer.position, `getAccount("${id}") should report the position it reflects: the last_position of the account's row, ` +
          `${row.last_position} (${QUERIES})`).toBe(Number(row.last_position));
        expect(answer.stale, `the read model has applied ${id}'s last write (position ${last.get(id)!.position}), so an answer ` +
          `asked for at least that position is not stale (${QUERIES})`).toBe(false);
      }
    } finally {
      await locker.query('ROLLBACK');
    }
  });

  test('a read right after a write reports a position behind the write\'s and says it is stale, then the fresh answer once the projection catches up', async ({ pg, kafka, procs }) => {
    const w = await world(pg, kafka);
    await startProjection(w, 'projection');
    const api = await procs.startHttp(SLUG, 'query-server.ts', { env: { ...pg.env, ...serviceEnv('kafka'), ACCOUNT_TOPIC: w.topic }, name: 'the query API (query-server.ts)', timeoutMs: 30_000 });
    const account = (id: string, query = '') => getJson(`${api.url}/accounts/${id}${query}`);
    await openAccount(w.pool, { accountId: 'ada', owner: 'Ada' });
    const first = await deposit(w.pool, { accountId: 'ada', amountCents: 100 });
    await caughtUp(w, () => `the projection did not apply the first deposit to account_balances (${PROJECTION})`);
    const before = await account('ada', `?atLeast=${first.position}`);
    expect(before.body, `once the projection has applied ada's deposit (position ${first.position}), GET /accounts/ada?atLeast=` +
      `${first.position} should answer the balance, that position and stale: false (${QUERIES})`)
      .toMatchObject({ account: { balanceCents: 100 }, position: first.position, stale: false });

    // The check holds ada's row: the projection will wait there with the next deposit.
    const hold = await holdAccountRow(pg, 'ada');
    try {
      const write = await deposit(w.pool, { accountId: 'ada', amountCents: 250 });
      await vi.waitFor(async () => {
        if ((await blockedBehind(pg, hold.pid)).length === 0) {
          throw new Error(kafka.withHandlerErrors(`the projection never tried to apply ada's second deposit (position ${write.position}) (${PROJECTION})`));
        }
      }, { timeout: 10_000, interval: 25 });

      const stale = await account('ada', `?atLeast=${write.position}`);
      expect(stale.body.account?.balanceCents, 'while the projection was held before applying the second deposit, GET ' +
        `/accounts/ada answered ${stale.body.account?.balanceCents ?? 'no'} balance, not the 100 cents account_balances holds: ` +
        `answer from the read model, never from the event store (${QUERIES})`).toBe(100);
      expect(stale.body.position, `the answer reflects position ${first.position} (the first deposit), behind the write at ` +
        `${write.position}: report the account's last_position, not a position from anywhere else (${QUERIES})`).toBe(first.position);
      expect(stale.body.stale, `GET /accounts/ada?atLeast=${write.position} answered from a read model at position ` +
        `${stale.body.position}, behind the caller's own write, and said stale: ${String(stale.body.stale)}. The caller would show ` +
        `a balance without the deposit it just made as if it were current. stale must be true whenever the position is ` +
        `below atLeast (${QUERIES})`).toBe(true);

      const started = Date.now();
      const waited = await account('ada', `?atLeast=${write.position}&waitMs=300`);
      const waitedMs = Date.now() - started;
      expect(waited.body.stale, `asked to wait up to 300 ms for position ${write.position}, which the projection cannot reach ` +
        `yet, the answer should come back still marked stale (${QUERIES})`).toBe(true);
      expect(waitedMs, `waitForAccount should keep polling until the timeout when the position is not reached; it answered ` +
        `after ${waitedMs} ms of 300 (${QUERIES})`).toBeGreaterThanOrEqual(250);

      const status = await getJson(`${api.url}/status`);
      expect(status.body.total, `GET /status should report the records the projection has not applied yet: at least ada's ` +
        `second deposit is on the topic and not in the read model (projectionLag, ${QUERIES})`).toBeGreaterThanOrEqual(1);

      const bob = await openAccount(w.pool, { accountId: 'bob', owner: 'Bob' });
      const missing = await account('bob', `?atLeast=${bob.position}`);
      expect({ status: missing.status, ...missing.body }, `bob's account was just opened (position ${bob.position}) and is not ` +
        'in the read model yet: the answer is 404 with account: null, position 0 and stale: true, since the caller knows ' +
        `of a write the read model has not reached (${QUERIES})`).toMatchObject({ status: 404, account: null, position: 0, stale: true });

      await hold.release();
      const fresh = await account('ada', `?atLeast=${write.position}&waitMs=8000`);
      expect(fresh.body, `once the projection could go on, GET /accounts/ada?atLeast=${write.position}&waitMs=8000 should wait ` +
        `for the deposit and answer the new balance at that position, stale: false (${QUERIES})`)
        .toMatchObject({ account: { balanceCents: 350 }, position: write.position, stale: false });
      const bobFresh = await account('bob', `?atLeast=${bob.position}&waitMs=8000`);
      expect({ status: bobFresh.status, ...bobFresh.body }, `bob's account should appear once the projection catches up (${QUERIES})`)
        .toMatchObject({ status: 200, account: { accountId: 'bob', balanceCents: 0 }, position: bob.position, stale: false });
      await vi.waitFor(async () => {
        const { body } = await getJson(`${api.url}/status`);
        if (body.total !== 0) throw new Error(`GET /status still reports a lag of ${body.total} after the projection caught up (projectionLag, ${QUERIES})`);
      }, { timeout: 5_000, interval: 50 });
    } finally {
      await hold.release();
    }
  });

  test('a projection killed mid-batch, after applying events but before COMMIT, leaves read model and checkpoint consistent, and a restart applies each event once', async ({ pg, kafka, procs }) => {
    await crashAndRestart(pg, kafka, procs, 'PROJECTION_CRASH_AFTER_APPLYING', 'right after applying its 15th event, in the middle of a batch');
  });

  test('a projection killed while storing its checkpoint leaves read model and checkpoint consistent, and a restart applies each event once', async ({ pg, kafka, procs }) => {
    await crashAndRestart(pg, kafka, procs, 'PROJECTION_CRASH_BEFORE_CHECKPOINT', 'as it was about to store a checkpoint, with 15 events applied');
  });

  test('a redelivered record applies nothing twice: an event published again, a group rewound to the beginning', async ({ pg, kafka }) => {
    const w = await world(pg, kafka);
    await fill(w, ['ada', 'grace', 'edsger', 'barbara'], 2);
    const first = await startProjection(w, 'projection-1');
    await caughtUp(w, () => `the projection did not bring account_balances up to date with the events (${PROJECTION})`);
    await expectExact(w, 'before any redelivery', `Apply every event once (${PROJECTION})`);

    // What a relay does when it crashes after Kafka took a batch and before it recorded that: the
    // same events again, at new offsets.
    const records = await kafka.readMessages(w.topic, 12);
    const again = records.filter((m) => headerText(m.headers, 'event-type') === 'MoneyDeposited').slice(0, 4);
    const producer = await kafka.producer();
    await producer.send({
      topic: w.topic,
      acks: -1,
      messages: again.map((m) => ({ key: m.key, value: m.value, headers: m.headers as IHeaders, partition: m.partition })),
    });
    await deposit(w.pool, { accountId: 'ada', amountCents: 31 });
    await caughtUp(w, () => `the projection stopped applying events after ${again.length} records were published a second time (${PROJECTION})`);
    await expectExact(w, `after ${again.length} deposits were published to the topic a second time (as a relay does after a crash)`,
      'The copies have new offsets but the same event positions. Skip a record whose event position is at or below the ' +
      `position in its partition's checkpoint (${PROJECTION})`);

    await first.stop();
    const beginning = await (await kafka.adminFor(w.topic)).fetchTopicOffsets(w.topic);
    await moveGroupOffsets(w, new Map(beginning.map(({ partition, low }) => [partition, Number(low)])));
    await startProjection(w, 'projection-2');
    await deposit(w.pool, { accountId: 'grace', amountCents: 37 });
    await caughtUp(w, () => `after the group was rewound to the beginning and the projection restarted, it did not catch up (${PROJECTION})`);
    await expectExact(w, 'after the group was rewound to the beginning of the topic and the projection restarted',
      'Every record at or below the stored checkpoint is already in the read model: start each partition after its checkpoint ' +
      `and skip whatever comes at or below it (${PROJECTION})`);
  });

  test('the projection resumes from its own checkpoints, not the group\'s committed offsets: offsets moved to the end skip nothing', async ({ pg, kafka }) => {
    const w = await world(pg, kafka);
    const [[a0, b0], [a1], [c2]] = accountsOn('acc', w.partitions, [2, 1, 1]) as [[string, string], [string], [string]];
    await fill(w, [a0, b0, a1], 2);
    const first = await startProjection(w, 'projection-1');
    await caughtUp(w, () => `the projection did not bring account_balances up to date with the events (${PROJECTION})`);
    await first.stop();

    // While it is stopped: more events on partitions it has checkpoints for, and a first one on partition 2.
    await deposit(w.pool, { accountId: a0, amountCents: 41 });
    await withdraw(w.pool, { accountId: a1, amountCents: 43 });
    await fill(w, [c2], 1);
    await published(w);
    const ends = await kafka.latestOffsets(w.topic);
    await moveGroupOffsets(w, ends);

    await startProjection(w, 'projection-2');
    await caughtUp(w, () => 'the events published while the projection was stopped were never applied. The group\'s committed ' +
      'offsets had been moved to the end of each partition, and the projection started there: Kafka\'s offsets are not its ' +
      'position, its checkpoints are. On GROUP_JOIN, seek each assigned partition to its checkpoint offset + 1, or to the ' +
      `partition's oldest offset when it has no checkpoint (${PROJECTION})`);
    await expectExact(w, 'after a restart with the group\'s offsets moved to the end', `Start each partition after its stored checkpoint (${PROJECTION})`);
  });

  test('two projection instances in one group never both apply an event, even when one stalls mid-batch and loses its partitions to the other', async ({ pg, kafka }) => {
    const w = await world(pg, kafka);
    const ids = accountsOn('acc', w.partitions, [2, 2, 2]).flat();
    await fill(w, ids, 1);
    await startProjection(w, 'projection-a');
    await caughtUp(w, () => `the projection did not bring account_balances up to date with the events (${PROJECTION})`);

    // Deposits keep coming for the whole test, through both rebalances.
    let flowing = true;
    const flow = (async () => {
      for (let i = 0; flowing; i++) {
        await deposit(w.pool, { accountId: ids[i % ids.length]!, amountCents: (nextAmount += 7) });
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    flow.catch(() => {});
    let second: Promise<RunningProjection> | undefined;
    const stalled = ids[0]!;
    const hold = await holdAccountRow(pg, stalled);
    try {
      // Instance A gets stuck in the middle of a batch (on the row the check holds), with the
      // batch's earlier events applied but not committed. B joins; A misses the rebalance (it is not
      // heartbeating) and is dropped from the group, so B gets A's partitions and starts on the same batch.
      const write = await deposit(w.pool, { accountId: stalled, amountCents: (nextAmount += 7) });
      await vi.waitFor(async () => {
        if ((await blockedBehind(pg, hold.pid)).length === 0) {
          throw new Error(kafka.withHandlerErrors(`the projection never tried to apply the deposit at position ${write.position} (${PROJECTION})`));
        }
      }, { timeout: 10_000, interval: 25 });
      second = startProjection(w, 'projection-b');
      second.catch(() => {});
      await vi.waitFor(async () => {
        if ((await blockedBehind(pg, hold.pid)).length < 2) {
          throw new Error(kafka.withHandlerErrors('the second instance never started on the stalled instance\'s partition (the check ' +
            `waited for it to wait on a lock in PostgreSQL) (${PROJECTION})`));
        }
      }, { timeout: 15_000, interval: 50 });
    } finally {
      // A goes on and commits; B, which read the same records, must now see that A applied them.
      await hold.release();
    }
    await second;
    // A finds out it was dropped and joins again: one more rebalance, with deposits still coming.
    await vi.waitFor(async () => {
      const { state, members } = await kafka.groupMembers(w.groupId, w.topic);
      if (state !== 'Stable' || members.length !== 2 || members.some((m) => m.partitions.length === 0)) {
        throw new Error(kafka.withHandlerErrors(`after the stall, the group did not settle with both instances sharing the partitions ` +
          `(state ${state}, ${members.length} members) (${PROJECTION})`));
      }
    }, { timeout: 15_000, interval: 100 });
    flowing = false;
    await flow;
    await caughtUp(w, () => `after the rebalances, the two instances did not catch up with the topic (${PROJECTION})`);
    await expectExact(w, 'after one instance stalled mid-batch and the other took its partitions over', 'Both instances read the ' +
      'same records; only one may apply them. Lock the partition\'s checkpoint (lockCheckpoint: SELECT … FOR UPDATE) at the start ' +
      'of the batch\'s transaction and skip what it covers: the second instance then waits for the first to commit and sees what ' +
      `it applied (${PROJECTION})`);
  });

  test('dropping the read model and rebuilding it by replay gives tables identical to the live ones', async ({ pg, kafka }) => {
    const w = await world(pg, kafka);
    const ids = ['ada', 'grace', 'edsger', 'barbara', 'alan'];
    await fill(w, ids, 3);
    await withdraw(w.pool, { accountId: 'grace', amountCents: 999 });
    await withdraw(w.pool, { accountId: 'alan', amountCents: 1_234 });
    const live = await startProjection(w, 'projection-live');
    await caughtUp(w, () => `the projection did not bring account_balances up to date with the events (${PROJECTION})`);
    const liveTables = { balances: await balances(w), checkpoints: await pg.rows('projection_checkpoints', 'partition') };
    await live.stop();

    // The read model has gone wrong (a buggy release, a bad manual fix): the rebuild must not care.
    await pg.query('UPDATE account_balances SET balance_cents = balance_cents + 5000 WHERE account_id = $1', ['ada']);
    await pg.query('DELETE FROM account_balances WHERE account_id = $1', ['edsger']);
    await pg.query(`INSERT INTO account_balances VALUES ('mallory', 'Mallory', 1000000, 1, 2, 999, now(), now())`);

    await within(20_000, rebuildAccountProjection({
      pool: await pg.newPoolFor({ max: 4 }), kafka: kafka.client('projection-rebuild'), topic: w.topic, groupId: w.groupId,
      timings: { ...CHECK_GROUP_TIMINGS }, onMalformed: () => {}, timeoutMs: 15_000,
    }), () => kafka.withHandlerErrors(`rebuildAccountProjection did not finish within 20 s (${PROJECTION})`));
    const rebuilt = await balances(w);
    expect(rebuilt, 'after the rebuild, account_balances differs from the live read model:\n' +
      `${differences(rebuilt, liveTables.balances)}\nA rebuild empties the read model AND its checkpoints (one transaction), then ` +
      `replays the topic from the beginning up to where it ended when the rebuild began (${PROJECTION})`).toEqual(liveTables.balances);
    expect(await pg.rows('projection_checkpoints', 'partition'), 'after the rebuild, the checkpoints should be where the live ' +
      `projection had them: at the last record of each partition (${PROJECTION})`).toEqual(liveTables.checkpoints);

    // The live projection carries on from the rebuilt checkpoints.
    await startProjection(w, 'projection-after-rebuild');
    await deposit(w.pool, { accountId: 'edsger', amountCents: 77 });
    await caughtUp(w, () => `after the rebuild, the restarted projection did not apply a new deposit (${PROJECTION})`);
    await expectExact(w, 'after the rebuild and a new deposit', `The rebuilt checkpoints are where the projection resumes (${PROJECTION})`);
  });

  test('a malformed record is skipped and checkpointed, a failed write to the read model is retried, and every event is applied exactly once', async ({ pg, kafka }) => {
    const w = await world(pg, kafka);
    await fill(w, ['ada', 'grace'], 1);
    const malformed: string[] = [];
    await startProjection(w, 'projection', { onMalformed: (error, { partition, offset }) => void malformed.push(`${partition}@${offset}: ${error.message}`) });
    await caughtUp(w, () => `the projection did not bring account_balances up to date with the events (${PROJECTION})`);

    // Two records that are not account events, on ada's partition, between real ones.
    const partition = partitionOf('ada', w.partitions);
    const producer = await kafka.producer();
    await producer.send({ topic: w.topic, acks: -1, messages: [
      { key: 'ada', value: '{"not": "an event"', partition },
      { key: 'ada', value: JSON.stringify({ type: 'InterestAccrued', data: {}, streamId: 'ada', version: 9, position: 9, recordedAt: new Date().toISOString() }), partition },
    ] });
    await deposit(w.pool, { accountId: 'ada', amountCents: 53 });
    await caughtUp(w, () => 'after two malformed records, the projection did not get past them: a record that is not an account ' +
      'event can never be applied, so retrying it blocks its partition for ever. Catch MalformedEventError, report it to ' +
      `options.onMalformed, and move the checkpoint past it (${PROJECTION})`);
    expect(malformed.length, `both malformed records should be reported to options.onMalformed (${PROJECTION})`).toBeGreaterThanOrEqual(2);
    await expectExact(w, 'after two malformed records', `Skip only the malformed records (${PROJECTION})`);

    // The read model refuses writes to grace's row for a while (a lock timeout, a full disk...).
    await pg.query(`
      CREATE TABLE check_refused (account_id text PRIMARY KEY);
      CREATE SEQUENCE check_refusals;
      CREATE FUNCTION check_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM check_refused WHERE account_id = NEW.account_id) THEN
          PERFORM nextval('check_refusals');
          RAISE EXCEPTION 'the read model is unavailable (simulated by the check)';
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER check_refuse BEFORE UPDATE ON account_balances FOR EACH ROW EXECUTE FUNCTION check_refuse();
      INSERT INTO check_refused VALUES ('grace');`);
    const refused = await deposit(w.pool, { accountId: 'grace', amountCents: 59 });
    await vi.waitFor(async () => {
      const [row] = await pg.query<{ n: string }>('SELECT last_value::text AS n FROM check_refusals WHERE is_called');
      if (Number(row?.n ?? 0) < 2) {
        throw new Error(`the read model refused the deposit at position ${refused.position} (the check made its UPDATE fail) and ` +
          'the projection did not try it again. A failed transaction must make the batch fail: let the error escape eachBatch ' +
          `and kafkajs retries it; catching it and moving on loses the events (${PROJECTION})`);
      }
    }, { timeout: 10_000, interval: 25 });
    await pg.query('DELETE FROM check_refused');
    await caughtUp(w, () => `once the read model accepted writes again, the projection did not apply the refused deposit (${PROJECTION})`);
    await expectExact(w, 'after the read model refused a write for a while', 'A failed write is not a malformed record: let the ' +
      'error roll the transaction back and escape the batch, so kafkajs retries it; only MalformedEventError is skipped ' +
      `(${PROJECTION})`);
  });
});
