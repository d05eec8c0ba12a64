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
export async function startStockProjection(options: ProjectionOptions): Promise<RunningProjection> {
  // TODO: like lesson 08's worker. A consumer in options.groupId (timings or
  // DEFAULT_GROUP_TIMINGS, allowAutoTopicCreation: false), subscribed to the topic from the
  // beginning, auto-commit off. For each message:
  //  1. if the read model already has it (its offset is below readModel.resumeOffset(partition):
  //     the process was killed after applying it and before committing it), do not apply it again;
  //  2. otherwise decodeMovement, then (options.change ?? stockChange)(movement) gives
  //     { sku, delta } for options.readModel.apply(sku, delta, { partition, offset }); a
  //     MalformedEventError goes to options.onMalformed (or a console.warn);
  //  3. then, and only then, commit offset + 1.
  // Return { stop } that disconnects.
  throw new Error('TODO: startStockProjection');
}

/**
 * Rebuilds the read model by replaying the log: clears it, then moves the group back to `from`
 * and applies every movement again. Run one instance while rebuilding, with the normal
 * projection stopped; if it dies half-way, run it again.
 */
export async function rebuildStockProjection(options: RebuildOptions): Promise<RunningProjection> {
  // TODO: the group already has committed offsets (at the end of the log, most likely), and
  // subscribe's fromBeginning is ignored for a group that has offsets. So:
  //  1. find where the replay starts on each partition (replayStartOffsets, with an admin client);
  //  2. clear the read model;
  //  3. run the projection as above, and when the group assigns partitions to it
  //     (consumer.on(consumer.events.GROUP_JOIN, ...)), consumer.seek each assigned partition to
  //     its start offset, before anything is fetched.
  throw new Error('TODO: rebuildStockProjection');
}

/** The offset on each partition where a replay from `from` begins. */
export async function replayStartOffsets(admin: Admin, topic: string, from: ReplayFrom): Promise<PartitionOffset[]> {
  // TODO: 'beginning': the low offset of each partition (admin.fetchTopicOffsets; retention may
  // have removed older messages, so it is not always 0). A timestamp: the first offset at or
  // after it on each partition (admin.fetchTopicOffsetsByTimestamp).
  throw new Error('TODO: replayStartOffsets');
}
