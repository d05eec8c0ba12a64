import { gradedFolder } from './support/lesson.ts';
import { randomUUID } from 'node:crypto';
import { describe, it, vi } from './support/fixtures.ts';
import { encodeMovement } from '@lesson/09-kafka-replay/codec.ts';
import type { StockMovement } from '@lesson/09-kafka-replay/events.ts';
import { stockChange, type StockChange } from '@lesson/09-kafka-replay/projection.ts';
import { rebuildStockProjection, startStockProjection, type RunningProjection } from '@lesson/09-kafka-replay/projector.ts';
import type { StockLevels, StockReadModel } from '@lesson/09-kafka-replay/read-model.ts';
import { CHECK_GROUP_TIMINGS, produce, type KafkaTestKit } from './support/kafka.ts';

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

  async adjust(sku: string, delta: number): Promise<void> {
    this.applied += 1;
    this.bySku[sku] = (this.bySku[sku] ?? 0) + delta;
  }

  async clear(): Promise<void> {
    this.clears += 1;
    this.applied = 0;
    this.bySku = {};
  }

  async levels(): Promise<StockLevels> {
    return sorted(this.bySku);
  }
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
    const movements = ledger(24);
    const topic = await topicWith(kafka, movements);
    const readModel = new RecordingReadModel();
    stopAfterwards(kafka, await startStockProjection({ kafka: kafka.client('stock-levels'), topic, groupId: kafka.groupId('stock-levels'), readModel, timings: { ...CHECK_GROUP_TIMINGS } }));

    await appliedAtLeast(kafka, readModel, movements.length, () => `the projection applied ${readModel.applied} of the ${movements.length} ` +
      'movements already in the log. A group with no committed offsets should start at the oldest message: subscribe ' +
      `with fromBeginning: true and apply every movement to the read model (${WHERE}/projector.ts).`);
    expect(await readModel.levels(), `the stock levels should be what the ${movements.length} movements add up to`).toEqual(levelsOf(movements));
  });

  it('a group with committed offsets resumes where it stopped, and rebuilding it replays the log from the start', async ({ kafka, expect }) => {
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
    await readModel.adjust('SKU-NEW', 5);
    stopAfterwards(kafka, await rebuildStockProjection({ ...options, readModel, from: 'beginning' }));
    const all = [...movements, arrival];
    await appliedAtLeast(kafka, readModel, all.length, () => `the rebuild applied ${readModel.applied} of the ${all.length} movements in the ` +
      `log. Group ${groupId} already has committed offsets at the end of the log, and fromBeginning only applies to a ` +
      'group that has none: the rebuild must move the group back itself, with consumer.seek when its partitions are ' +
      `assigned (or by resetting the group's offsets while it is stopped) (${WHERE}/projector.ts).`);
    expect(readModel.clears, `a rebuild starts from an empty read model: clear it first, or every level is counted twice (${WHERE}/projector.ts)`).toBeGreaterThan(0);
    expect(await readModel.levels(), 'the rebuilt stock levels should be what every movement in the log adds up to').toEqual(levelsOf(all));
  });

  it('rebuilding from a timestamp replays only the movements from that moment on', async ({ kafka, expect }) => {
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
    expect(await readModel.levels(), 'the levels should be what the movements since that moment add up to').toEqual(levelsOf(replayed));
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
    expect(wrong, 'release 1 counts returns as shipments, so its levels are wrong').toEqual(levelsOf(movements, false));

    // Release 2 has the fix: rebuild the same read model by replaying the whole log with it.
    stopAfterwards(kafka, await rebuildStockProjection({ ...options, readModel, from: 'beginning' }));
    await appliedAtLeast(kafka, readModel, movements.length, () => `after the fix, the rebuild applied ${readModel.applied} of the ` +
      `${movements.length} movements: the group's offsets are at the end of the log and must be moved back (${WHERE}/projector.ts)`);
    const truth = levelsOf(movements);
    expect(await readModel.levels(), 'after the fix and the replay, every level should be right: the rebuild clears the ' +
      `read model and applies every movement once with the fixed stockChange (${WHERE}/projection.ts, projector.ts)`).toEqual(truth);
  });
});
