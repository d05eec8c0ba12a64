import type { Admin, Kafka } from 'kafkajs';
import { decodeMovement, MalformedEventError } from './codec.ts';
import type { StockMovement } from './events.ts';
import { DEFAULT_GROUP_TIMINGS, type GroupTimings } from './kafka.ts';
import { stockChange, type StockChange } from './projection.ts';
import type { StockReadModel } from './read-model.ts';

export interface ProjectionOptions {
  kafka: Kafka;
  topic: string;
  groupId: string;
  readModel: StockReadModel;
  timings?: GroupTimings;
  /** The projection logic; a rebuild after a fix runs the new version over the whole log. */
  change?: (movement: StockMovement) => StockChange;
  onMalformed?(error: MalformedEventError, position: { partition: number; offset: string }): void;
}

/** Where a replay starts: the oldest retained movement, or the first at or after a moment. */
export type ReplayFrom = 'beginning' | { timestamp: number };

export interface RebuildOptions extends ProjectionOptions {
  from: ReplayFrom;
}

export interface RunningProjection {
  /** Leaves the group and disconnects; committed offsets stay, so a restart resumes. */
  stop(): Promise<void>;
}

export interface PartitionOffset {
  partition: number;
  offset: string;
}

/**
 * Keeps the read model up to date: resumes from the group's committed offsets, or, for a group
 * that has none, from the beginning of the log. Each movement is applied together with its
 * position, skipped if the read model already has it, and committed after that.
 */
export function startStockProjection(options: ProjectionOptions): Promise<RunningProjection> {
  return runProjection(options);
}

/**
 * Rebuilds the read model by replaying the log: clears it, then moves the group back to `from`
 * and applies every movement again. `fromBeginning` cannot do this: it only applies to a group
 * with no committed offsets, and this group has them. Run one instance while rebuilding, with
 * the normal projection stopped; if it dies half-way, run it again.
 */
export async function rebuildStockProjection(options: RebuildOptions): Promise<RunningProjection> {
  const admin = options.kafka.admin();
  await admin.connect();
  let start: PartitionOffset[];
  try {
    start = await replayStartOffsets(admin, options.topic, options.from);
  } finally {
    await admin.disconnect();
  }
  await options.readModel.clear();
  return runProjection(options, new Map(start.map(({ partition, offset }) => [partition, offset])));
}

/** The offset on each partition where a replay from `from` begins. */
export async function replayStartOffsets(admin: Admin, topic: string, from: ReplayFrom): Promise<PartitionOffset[]> {
  if (from === 'beginning') {
    return (await admin.fetchTopicOffsets(topic)).map(({ partition, low }) => ({ partition, offset: low }));
  }
  // The first offset whose timestamp is at or after the moment (the end, where there is none).
  return admin.fetchTopicOffsetsByTimestamp(topic, from.timestamp);
}

async function runProjection(options: ProjectionOptions, replayFrom?: Map<number, string>): Promise<RunningProjection> {
  const { kafka, topic, groupId, readModel } = options;
  const change = options.change ?? stockChange;
  const onMalformed = options.onMalformed ??
    ((error, { partition, offset }) => console.warn(`[stock] skipped ${topic}/${partition}@${offset}: ${error.message}`));

  // Topics are created on purpose, with a chosen partition count, never as a side effect of subscribing.
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false, ...(options.timings ?? DEFAULT_GROUP_TIMINGS) });
  // How far this run got on each partition, so a rejoin after a rebalance resumes the replay
  // there instead of starting it over or jumping back to the offsets committed before it.
  const reached = new Map<number, string>();
  if (replayFrom) {
    // Seek as partitions are assigned, before the first fetch: nothing from the old position is read.
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      for (const partition of payload.memberAssignment[topic] ?? []) {
        const offset = reached.get(partition) ?? replayFrom.get(partition);
        if (offset !== undefined) consumer.seek({ topic, partition, offset });
      }
    });
  }

  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const position = { partition, offset: message.offset };
        // A process killed after applying a movement and before committing it gets that movement
        // again: the read model, which records its position with every change, already holds it.
        const resumeAt = await readModel.resumeOffset(partition);
        const alreadyApplied = resumeAt !== undefined && BigInt(message.offset) < BigInt(resumeAt);
        if (!alreadyApplied) {
          try {
            const { sku, delta } = change(decodeMovement(message));
            await readModel.apply(sku, delta, position);
          } catch (error) {
            if (!(error instanceof MalformedEventError)) throw error;
            onMalformed(error, position);
          }
        }
        // Committed after the read model has the movement, never before: a crash in between is
        // then a redelivery that the check above absorbs, not a movement that is lost.
        const next = (BigInt(message.offset) + 1n).toString();
        await consumer.commitOffsets([{ topic, partition, offset: next }]);
        reached.set(partition, next);
      },
    });
  } catch (error) {
    await consumer.disconnect();
    throw error;
  }
  return { stop: () => consumer.disconnect() };
}
