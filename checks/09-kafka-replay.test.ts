import { gradedFolder } from './support/lesson.ts';
import { randomUUID } from 'node:crypto';
import { describe, it, vi } from './support/fixtures.ts';
import type { ExpectStatic } from 'vitest';
import { encodeMovement } from '@lesson/09-kafka-replay/codec.ts';
import { EVENT_HEADERS, MOVEMENT_VERSION, type StockMovement } from '@lesson/09-kafka-replay/events.ts';
import { stockChange, type StockChange } from '@lesson/09-kafka-replay/projection.ts';
import { rebuildStockProjection, startStockProjection, type RunningProjection } from '@lesson/09-kafka-replay/projector.ts';
import { FileStockReadModel, type LogPosition, type StockLevels, type StockReadModel } from '@lesson/09-kafka-replay/read-model.ts';
import { CHECK_GROUP_TIMINGS, groupTimingsEnv, produce, type KafkaTestKit } from './support/kafka.ts';
import { uniqueName } from './support/names.ts';
import type { ProcessGroup } from './support/processes.ts';
import { serviceEnv } from './support/services.ts';
import { within } from './support/polling.ts';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SLUG = '09-kafka-replay';
const WHERE = gradedFolder(SLUG);
// Each requirement has its own topic and group; they run side by side.

const SKUS = ['SKU-MUG', 'SKU-KETTLE', 'SKU-TEAPOT', 'SKU-SPOON', 'SKU-TRAY', 'SKU-JUG'];

/**
 * A ledger of `count` movements, one a minute ending a few minutes ago, with returns among them.
 * Each SKU is received first, so no level ever goes below zero.
 */
function ledger(count: number): StockMovement[] {
  const start = Date.now() - (count + 5) * 60_000;
  return Array.from({ length: count }, (_, i): StockMovement => {
    const sku = SKUS[i % SKUS.length]!;
    const at = new Date(start + i * 60_000).toISOString();
    const base = { movementId: randomUUID(), sku, at };
    if (i < SKUS.length) return { ...base, type: 'stock.received', quantity: 50 + i };
    if (i % 3 === 0) return { ...base, type: 'stock.returned', quantity: 1 + (i % 4), orderId: `order-${i}` };
    return { ...base, type: 'stock.shipped', quantity: 2 + (i % 5), orderId: `order-${i}` };
  });
}

/** The stock levels the movements add up to, computed here independently of the lesson's code. */
function levelsOf(movements: StockMovement[], returnsGoBackOnTheShelf = true): StockLevels {
  const levels: StockLevels = {};
  for (const m of movements) {
    const sign = m.type === 'stock.shipped' || (m.type === 'stock.returned' && !returnsGoBackOnTheShelf) ? -1 : 1;
    levels[m.sku] = (levels[m.sku] ?? 0) + sign * m.quantity;
  }
  return sorted(levels);
}

function sorted(levels: StockLevels): StockLevels {
  return Object.fromEntries(Object.entries(levels).sort(([a], [b]) => a.localeCompare(b)));
}

/** The first release of the projection, as it ran in production: it took returns off the shelf. */
function stockChangeV1(movement: StockMovement): StockChange {
  const sign = movement.type === 'stock.received' ? 1 : -1;
  return { sku: movement.sku, delta: sign * movement.quantity };
}

/** A read model that also counts what was applied to it since it was last cleared. */
class RecordingReadModel implements StockReadModel {
  applied = 0;
  clears = 0;
  private bySku: StockLevels = {};
  private resumeAt = new Map<number, string>();

  async apply(sku: string, delta: number, position: LogPosition): Promise<void> {
    this.applied += 1;
    this.bySku[sku] = (this.bySku[sku] ?? 0) + delta;
    this.resumeAt.set(position.partition, (BigInt(position.offset) + 1n).toString());
  }

  async resumeOffset(partition: number): Promise<string | undefined> {
    return this.resumeAt.get(partition);
  }

  async clear(): Promise<void> {
    this.clears += 1;
    this.applied = 0;
    this.bySku = {};
    this.resumeAt.clear();
  }

  async levels(): Promise<StockLevels> {
    return sorted(this.bySku);
  }
}

/** A read model whose store is down for its `failingWrite`-th write (counted from 1), and up again after it. */
class StoreDownOnceReadModel extends RecordingReadModel {
  private writes = 0;
  failedAt: string | undefined;

  constructor(private readonly failingWrite: number) {
    super();
  }

  override async apply(sku: string, delta: number, position: LogPosition): Promise<void> {
    this.writes += 1;
    if (this.writes === this.failingWrite) {
      this.failedAt = `${position.partition}:${position.offset}`;
      throw new Error('the stock store did not answer (connection reset)');
    }
    await super.apply(sku, delta, position);
  }
}

/**
 * The projection requirements compare levels computed with the learner's stockChange: establish
 * first that it is fixed, so a wrong level names projection.ts, and later failures the projector.
 */
function expectStockChangeFixed(expect: ExpectStatic): void {
  const returned: StockMovement = { type: 'stock.returned', movementId: 'm-pre', sku: 'SKU-MUG', quantity: 2, at: new Date().toISOString(), orderId: 'o-pre' };
  let change: StockChange | undefined;
  try {
    change = stockChange(returned);
  } catch (error) {
    throw new Error(`stockChange threw "${error instanceof Error ? error.message : String(error)}" for a return (${WHERE}/projection.ts)`, { cause: error });
  }
  expect(change, 'stockChange still takes returned goods off the shelf, so every level the projection builds is wrong, ' +
    `however it replays: fix stockChange first (${WHERE}/projection.ts)`).toEqual({ sku: 'SKU-MUG', delta: 2 });
}

async function topicWith(kafka: KafkaTestKit, movements: StockMovement[]): Promise<string> {
  const topic = await kafka.createTopic('warehouse-movements', 3);
  const producer = await kafka.producer();
  await produce(producer, topic, movements.map(encodeMovement));
  return topic;
}

function stopAfterwards(kafka: KafkaTestKit, projection: RunningProjection): RunningProjection {
  kafka.cleanup(() => projection.stop());
  return projection;
}

/** Waits until the read model has applied `count` movements since it was last cleared. */
async function appliedAtLeast(kafka: KafkaTestKit, readModel: RecordingReadModel, count: number, failure: () => string, timeout = 6_000): Promise<void> {
  await vi.waitFor(() => {
    if (readModel.applied < count) throw new Error(kafka.withHandlerErrors(failure()));
  }, { timeout, interval: 25 });
}

/** Waits until the group's committed offsets reach the end of every partition. */
async function caughtUp(kafka: KafkaTestKit, groupId: string, topic: string, failure: string): Promise<void> {
  await vi.waitFor(async () => {
    const [committed, latest] = await Promise.all([kafka.committedOffsets(groupId, topic), kafka.latestOffsets(topic)]);
    for (const [partition, end] of latest) {
      if (end > 0 && committed.get(partition) !== end) throw new Error(kafka.withHandlerErrors(failure));
    }
  }, { timeout: 6_000, interval: 50 });
}

/** The "applied <partition>:<offset>" lines a projection-service process printed. */
function appliedPositions(output: string): string[] {
  return [...output.matchAll(/^applied (\d+:\d+) /gm)].map((match) => match[1]!);
}

interface CrashRun {
  before: string[];
  after: string[];
  crashedAt: string;
  all: string[];
  levels: StockLevels;
  expected: StockLevels;
  committedAtCrash: Map<number, number>;
}

/**
 * Runs projection-service.ts with a crash switch until it kills itself at the 7th movement, then
 * again without one until its read model (a file) holds every movement of the log.
 */
async function crashThenRestart(kafka: KafkaTestKit, procs: ProcessGroup, expect: ExpectStatic, crashSwitch: 'CRASH_BEFORE_APPLYING' | 'CRASH_AFTER_APPLYING'): Promise<CrashRun> {
  const movements = ledger(18);
  const topic = await topicWith(kafka, movements);
  const groupId = kafka.groupId('stock-levels');
  const stateFile = join(tmpdir(), `${uniqueName('stock-levels')}.json`);
  kafka.cleanup(async () => rmSync(stateFile, { force: true }));
  // The restarted process joins while the killed one is still a member: a short rebalance timeout
  // lets the coordinator drop it after a second instead of waiting for its session to time out.
  const env = { ...serviceEnv('kafka'), ...groupTimingsEnv({ rebalanceTimeout: 1_000 }), STOCK_TOPIC: topic, STOCK_GROUP: groupId, STOCK_STATE_FILE: stateFile };

  const first = procs.start(SLUG, 'projection-service.ts', { env: { ...env, [crashSwitch]: '7' }, name: 'the stock projection (crashing)' });
  kafka.cleanup(() => first.stop());
  const exit = await within(20_000, first.exited, () => kafka.withHandlerErrors('the projection should have reached its 7th movement ' +
    `and been killed there (${crashSwitch}=7), but it is still running. Its output:\n${first.output()}\n(${WHERE}/projector.ts)`));
  expect(exit.signal, `the projection should have been killed at its 7th movement; it exited with code ${exit.code}. Its output:\n` +
    `${first.output()}\n(${WHERE}/projector.ts)`).toBe('SIGKILL');
  const crashedAt = /^simulated crash (?:before|after) applying (\d+:\d+)/m.exec(first.output())?.[1] ?? '?';
  const committedAtCrash = await kafka.committedOffsets(groupId, topic);
  const before = appliedPositions(first.output());

  const second = procs.start(SLUG, 'projection-service.ts', { env, name: 'the stock projection (restarted)' });
  kafka.cleanup(() => second.stop());
  const latest = await kafka.latestOffsets(topic);
  await vi.waitFor(() => {
    const { resumeAt } = FileStockReadModel.read(stateFile);
    for (const [partition, end] of latest) {
      if (end > 0 && resumeAt[String(partition)] !== String(end)) {
        throw new Error(kafka.withHandlerErrors(`after the restart the read model never reached the end of partition ${partition} ` +
          `(offset ${end}; it is at ${resumeAt[String(partition)] ?? 'nothing'}). Output of the restarted projection:\n` +
          `${second.output()}\n(${WHERE}/projector.ts)`));
      }
    }
  }, { timeout: 25_000, interval: 100 });
  await second.stop();

  const all = [...latest].flatMap(([partition, end]) => Array.from({ length: end }, (_, offset) => `${partition}:${offset}`));
  return { before, after: appliedPositions(second.output()), crashedAt, all, levels: FileStockReadModel.read(stateFile).levels, expected: levelsOf(movements), committedAtCrash };
}

describe.concurrent('09 kafka-replay', () => {
  it('stockChange puts returned goods back on the shelf (the projection\'s bug is fixed)', async ({ expect }) => {
    const base = { movementId: 'm-1', sku: 'SKU-MUG', quantity: 3, at: new Date().toISOString() };
    expect(stockChange({ ...base, type: 'stock.received' }), 'received goods add to the shelf').toEqual({ sku: 'SKU-MUG', delta: 3 });
    expect(stockChange({ ...base, type: 'stock.shipped', orderId: 'o-1' }), 'shipped goods leave the shelf').toEqual({ sku: 'SKU-MUG', delta: -3 });
    expect(stockChange({ ...base, type: 'stock.returned', orderId: 'o-1' }), 'a return brings goods back to the shelf, yet the ' +
      'projection takes them off: product pages show items as sold out that are in the warehouse. Fix stockChange ' +
      `(${WHERE}/projection.ts).`).toEqual({ sku: 'SKU-MUG', delta: 3 });
  });

  it('a new consumer group reading from the beginning builds the full stock levels', async ({ kafka, expect }) => {
    expectStockChangeFixed(expect);
    const movements = ledger(24);
    const topic = await topicWith(kafka, movements);
    const readModel = new RecordingReadModel();
    stopAfterwards(kafka, await startStockProjection({ kafka: kafka.client('stock-levels'), topic, groupId: kafka.groupId('stock-levels'), readModel, timings: { ...CHECK_GROUP_TIMINGS } }));

    await appliedAtLeast(kafka, readModel, movements.length, () => `the projection applied ${readModel.applied} of the ${movements.length} ` +
      'movements already in the log. A group with no committed offsets should start at the oldest message: subscribe ' +
      `with fromBeginning: true and apply every movement to the read model (${WHERE}/projector.ts).`);
    expect(await readModel.levels(), `the stock levels should be what the ${movements.length} movements add up to (${WHERE}/projector.ts)`).toEqual(levelsOf(movements));
  });

  it('a group with committed offsets resumes where it stopped, and rebuilding it replays the log from the start', async ({ kafka, expect }) => {
    expectStockChangeFixed(expect);
    const movements = ledger(18);
    const topic = await topicWith(kafka, movements);
    const groupId = kafka.groupId('stock-levels');
    const options = { kafka: kafka.client('stock-levels'), topic, groupId, timings: { ...CHECK_GROUP_TIMINGS } };

    const first = new RecordingReadModel();
    const initial = await startStockProjection({ ...options, readModel: first });
    await caughtUp(kafka, groupId, topic, `the projection never committed its way to the end of the log: commit each movement's ` +
      `offset + 1 after applying it (${WHERE}/projector.ts)`);
    await initial.stop();

    // A restart: the group has committed offsets, so it continues after the last applied movement.
    const afterRestart = new RecordingReadModel();
    const restarted = stopAfterwards(kafka, await startStockProjection({ ...options, readModel: afterRestart }));
    const arrival: StockMovement = { type: 'stock.received', movementId: randomUUID(), sku: 'SKU-NEW', quantity: 5, at: new Date().toISOString() };
    await produce(await kafka.producer(), topic, [encodeMovement(arrival)]);
    await appliedAtLeast(kafka, afterRestart, 1, () => 'after a restart the projection did not apply the movement that arrived meanwhile');
    await caughtUp(kafka, groupId, topic, 'after a restart the projection did not commit its way to the end of the log');
    expect(afterRestart.applied, `after a restart the projection applied ${afterRestart.applied} movements instead of the 1 new ` +
      'one: it replayed movements it had already applied. Commit offset + 1 after each one, so a restart resumes ' +
      `after it (${WHERE}/projector.ts).`).toBe(1);
    await restarted.stop();

    // The rebuild: same group, its committed offsets at the end of the log.
    const readModel = new RecordingReadModel();
    await readModel.apply('SKU-NEW', 5, { partition: 0, offset: '0' });
    stopAfterwards(kafka, await rebuildStockProjection({ ...options, readModel, from: 'beginning' }));
    const all = [...movements, arrival];
    await appliedAtLeast(kafka, readModel, all.length, () => `the rebuild applied ${readModel.applied} of the ${all.length} movements in the ` +
      `log. Group ${groupId} already has committed offsets at the end of the log, and fromBeginning only applies to a ` +
      'group that has none: the rebuild must move the group back itself, with consumer.seek when its partitions are ' +
      `assigned (or by resetting the group's offsets while it is stopped) (${WHERE}/projector.ts).`);
    expect(readModel.clears, `a rebuild starts from an empty read model: clear it first, or every level is counted twice (${WHERE}/projector.ts)`).toBeGreaterThan(0);
    expect(await readModel.levels(), `the rebuilt stock levels should be what every movement in the log adds up to (${WHERE}/projector.ts)`).toEqual(levelsOf(all));
  });

  it('rebuilding from a timestamp replays only the movements from that moment on', async ({ kafka, expect }) => {
    expectStockChangeFixed(expect);
    const movements = ledger(24);
    const topic = await topicWith(kafka, movements);
    const since = movements[15]!;
    const replayed = movements.slice(15);
    const groupId = kafka.groupId('stock-levels');
    const readModel = new RecordingReadModel();
    stopAfterwards(kafka, await rebuildStockProjection({
      kafka: kafka.client('stock-levels'),
      topic,
      groupId,
      readModel,
      timings: { ...CHECK_GROUP_TIMINGS },
      from: { timestamp: Date.parse(since.at) },
    }));

    await appliedAtLeast(kafka, readModel, replayed.length, () => `the rebuild from ${since.at} applied ${readModel.applied} movements; ` +
      `${replayed.length} were recorded at or after that moment (${WHERE}/projector.ts)`);
    await caughtUp(kafka, groupId, topic, `the rebuild never committed its way to the end of the log (${WHERE}/projector.ts)`);
    expect(readModel.applied, `the rebuild from ${since.at} applied ${readModel.applied} movements, but only ${replayed.length} were ` +
      'recorded at or after that moment. admin.fetchTopicOffsetsByTimestamp(topic, timestamp) gives the first offset at ' +
      `or after it on each partition: seek there (${WHERE}/projector.ts).`).toBe(replayed.length);
    expect(await readModel.levels(), `the levels should be what the movements since that moment add up to (${WHERE}/projector.ts)`).toEqual(levelsOf(replayed));
  });

  it('fixing the bug and replaying the log turns the wrong stock levels into the right ones', async ({ kafka, expect }) => {
    const movements = ledger(24);
    const topic = await topicWith(kafka, movements);
    const groupId = kafka.groupId('stock-levels');
    const options = { kafka: kafka.client('stock-levels'), topic, groupId, timings: { ...CHECK_GROUP_TIMINGS } };
    const readModel = new RecordingReadModel();

    // Release 1 ran for a while with the bug and built wrong levels (and committed its offsets).
    const release1 = await startStockProjection({ ...options, readModel, change: stockChangeV1 });
    await appliedAtLeast(kafka, readModel, movements.length, () => `the projection with the old logic applied ${readModel.applied} of ` +
      `${movements.length} movements: it should use options.change when given (${WHERE}/projector.ts)`);
    await caughtUp(kafka, groupId, topic, `the projection never committed its way to the end of the log (${WHERE}/projector.ts)`);
    await release1.stop();
    const wrong = await readModel.levels();
    expect(wrong, `release 1 counts returns as shipments, so its levels are wrong; they should be what the check computes for it (${WHERE}/projector.ts: apply options.change when given)`).toEqual(levelsOf(movements, false));

    // Release 2 has the fix: rebuild the same read model by replaying the whole log with it.
    stopAfterwards(kafka, await rebuildStockProjection({ ...options, readModel, from: 'beginning' }));
    await appliedAtLeast(kafka, readModel, movements.length, () => `after the fix, the rebuild applied ${readModel.applied} of the ` +
      `${movements.length} movements: the group's offsets are at the end of the log and must be moved back (${WHERE}/projector.ts)`);
    const truth = levelsOf(movements);
    expectStockChangeFixed(expect);
    expect(await readModel.levels(), 'after the fix and the replay, every level should be right: the rebuild clears the ' +
      `read model and applies every movement once with the fixed stockChange (${WHERE}/projector.ts)`).toEqual(truth);
  });
  it('a malformed movement is reported with its position and skipped: the movements after it are applied and committed', async ({ kafka, expect }) => {
    expectStockChangeFixed(expect);
    const movements = ledger(12);
    const topic = await topicWith(kafka, movements.slice(0, 6));
    const producer = await kafka.producer();
    // An event type this projection does not know, keyed like the others: it sits in the middle of SKU-MUG's partition.
    const [malformed] = await producer.send({ topic, acks: -1, messages: [{
      key: 'SKU-MUG',
      value: JSON.stringify({ movementId: randomUUID(), sku: 'SKU-MUG', quantity: 7, at: new Date().toISOString() }),
      headers: { [EVENT_HEADERS.type]: 'stock.teleported', [EVENT_HEADERS.version]: String(MOVEMENT_VERSION) },
    }] });
    const at = `${malformed!.partition}:${malformed!.baseOffset}`;
    await produce(producer, topic, movements.slice(6).map(encodeMovement));
    const groupId = kafka.groupId('stock-levels');
    const reported: string[] = [];
    const readModel = new RecordingReadModel();
    stopAfterwards(kafka, await startStockProjection({
      kafka: kafka.client('stock-levels'), topic, groupId, readModel, timings: { ...CHECK_GROUP_TIMINGS },
      onMalformed: (_error, position) => { reported.push(`${position.partition}:${position.offset}`); },
    }));

    await caughtUp(kafka, groupId, topic, `the projection never got past the malformed movement at ${at} (its type is ` +
      '"stock.teleported"): decodeMovement throws a MalformedEventError for it, and no retry can ever fix it, so a ' +
      'projection that lets it escape eachMessage is stuck on that partition for ever. Report it to options.onMalformed, ' +
      `skip it and commit its offset (${WHERE}/projector.ts)`);
    // At-least-once: a redelivery after a rebalance may report it again, which is fine.
    expect([...new Set(reported)], `the malformed movement at ${at} was skipped without a word: pass the MalformedEventError and its ` +
      `position to options.onMalformed, so someone can look at it (${WHERE}/projector.ts)`).toEqual([at]);
    expect(await readModel.levels(), `the levels should be what the 12 valid movements add up to, the malformed one left out (${WHERE}/projector.ts)`)
      .toEqual(levelsOf(movements));
  });

  it('a read model write that fails is retried, not skipped: the movement is applied once the store answers again', async ({ kafka, expect }) => {
    expectStockChangeFixed(expect);
    const movements = ledger(12);
    const topic = await topicWith(kafka, movements);
    const groupId = kafka.groupId('stock-levels');
    const readModel = new StoreDownOnceReadModel(5);
    stopAfterwards(kafka, await startStockProjection({ kafka: kafka.client('stock-levels'), topic, groupId, readModel, timings: { ...CHECK_GROUP_TIMINGS } }));

    await caughtUp(kafka, groupId, topic, `the projection never committed its way to the end of the log after one write to ` +
      `the read model failed (${readModel.failedAt ?? 'no write failed'}). An error that is not a MalformedEventError should ` +
      `leave eachMessage, so that kafkajs delivers the movement again (${WHERE}/projector.ts)`);
    expect(readModel.failedAt, 'the read model was written to fewer than 5 times, so no write failed').toBeDefined();
    expect(await readModel.levels(), `the write of movement ${readModel.failedAt} failed once (the store was down for a moment) ` +
      'and the movement was never applied, yet its offset was committed: it is lost for good. Only a MalformedEventError ' +
      'may be skipped; let any other error leave eachMessage, so that kafkajs retries the movement and the commit waits ' +
      `for it (${WHERE}/projector.ts)`).toEqual(levelsOf(movements));
  });

  it('the projection process killed after applying a movement and before committing it applies that movement no second time after a restart', async ({ kafka, procs, expect }) => {
    expectStockChangeFixed(expect);
    const run = await crashThenRestart(kafka, procs, expect, 'CRASH_AFTER_APPLYING');
    expect(run.before.length, `the projection printed ${run.before.length} applied movements before its crash, expected 7 (${WHERE}/projector.ts)`).toBe(7);
    const twice = run.after.filter((position) => run.before.includes(position));
    expect(twice, `movement ${twice[0]} was applied before the crash (the process was killed right after it reached the read model, ` +
      'before its offset was committed) and applied again after the restart, so its quantity is counted twice. The group ' +
      'redelivers it, as it should: the read model records its position with every change, so skip a movement whose ' +
      `offset is below readModel.resumeOffset(partition), and commit it (${WHERE}/projector.ts)`).toEqual([]);
    const missing = run.all.filter((position) => !run.before.includes(position) && !run.after.includes(position));
    expect(missing, `movements ${missing.join(', ')} were never applied, before the crash or after the restart (${WHERE}/projector.ts)`).toEqual([]);
    expect(run.levels, `after the crash and the restart every level should be what the movements add up to (${WHERE}/projector.ts)`).toEqual(run.expected);
  });

  it('the projection process killed before a movement reaches the read model applies it after a restart: nothing is skipped', async ({ kafka, procs, expect }) => {
    expectStockChangeFixed(expect);
    const run = await crashThenRestart(kafka, procs, expect, 'CRASH_BEFORE_APPLYING');
    expect(run.before.length, `the projection printed ${run.before.length} applied movements before its crash, expected 6 (${WHERE}/projector.ts)`).toBe(6);
    const [partition, offset] = run.crashedAt.split(':').map(Number);
    const committed = run.committedAtCrash.get(partition!) ?? -1;
    const missing = run.all.filter((position) => !run.before.includes(position) && !run.after.includes(position));
    expect(missing, `movement${missing.length > 1 ? 's' : ''} ${missing.join(', ')} never reached the read model: the process was killed ` +
      `just before ${run.crashedAt} was applied${committed > offset! ? `, yet ${partition}:${committed} was already committed` : ''}, ` +
      'so the restarted member resumed after it. Commit a movement only after readModel.apply has resolved ' +
      `(${WHERE}/projector.ts)`).toEqual([]);
    const twice = run.after.filter((position) => run.before.includes(position));
    expect(twice, `movements ${twice.join(', ')} were applied before the crash and again after the restart (${WHERE}/projector.ts)`).toEqual([]);
    expect(run.levels, `after the crash and the restart every level should be what the movements add up to (${WHERE}/projector.ts)`).toEqual(run.expected);
  });
});
