import type { Batch, Kafka } from 'kafkajs';
import type pg from 'pg';
import { decodeEvent, MalformedEventError } from './codec.ts';
import { inTransaction } from './db.ts';
import type { RecordedEvent } from './events.ts';
import { DEFAULT_GROUP_TIMINGS, type GroupTimings } from './kafka.ts';
import { ACCOUNT_BALANCES, applyAccountEvent, loadCheckpoints, lockCheckpoint, saveCheckpoint, type Checkpoint } from './read-model.ts';

export interface ProjectionOptions {
  pool: pg.Pool;
  kafka: Kafka;
  /** The topic the relay publishes the event store to. */
  topic: string;
  /** Every instance of the projection joins this group; each partition is read by one of them. */
  groupId: string;
  timings?: GroupTimings;
  /** A record that is not an account event: it is skipped (and checkpointed). Defaults to a warning. */
  onMalformed?(error: MalformedEventError, where: { partition: number; offset: string }): void;
}

export interface RebuildOptions extends ProjectionOptions {
  /** Give up (and throw) if the replay has not caught up by then. Default: 10 minutes. */
  timeoutMs?: number;
}

export interface RunningProjection {
  /** Finishes the batch in flight (its transaction commits), leaves the group and disconnects. */
  stop(): Promise<void>;
}

/**
 * Keeps the account_balances read model up to date from the topic. Each batch of records is applied
 * in ONE PostgreSQL transaction together with the partition's checkpoint, so the read model and its
 * position move together or not at all. Records at or below the checkpoint are skipped, which makes
 * redelivery harmless, and each partition starts just after its stored checkpoint: the consumer
 * group's committed offsets play no part in correctness.
 */
export async function startAccountProjection(options: ProjectionOptions): Promise<RunningProjection> {
  // TODO:
  //  1. Before joining the group, find where each partition starts: loadCheckpoints(pool,
  //     ACCOUNT_BALANCES, topic) gives the stored checkpoints; a partition with one starts at its
  //     offset + 1n, a partition without one at its oldest offset (the `low` of
  //     admin.fetchTopicOffsets(topic), with an admin client you connect and disconnect).
  //  2. Create the consumer (options.groupId, the timings or DEFAULT_GROUP_TIMINGS,
  //     allowAutoTopicCreation: false). Register a GROUP_JOIN listener that seeks every partition of
  //     payload.memberAssignment[topic] to its start; then connect, subscribe from the beginning, and
  //     run with autoCommit: false and eachBatchAutoResolve: false. The group's committed offsets
  //     are never used: the checkpoints are the position.
  //  3. eachBatch: ONE transaction for the batch (inTransaction from db.ts):
  //       lockCheckpoint(client, ACCOUNT_BALANCES, topic, batch.partition);
  //       for each message, while isRunning() && !isStale():
  //         - offset at or below the checkpoint's offset: skip (delivered again);
  //         - decodeEvent; a MalformedEventError goes to options.onMalformed (or a console.warn)
  //           and the record is skipped, but its offset still moves the checkpoint;
  //         - an event whose position is at or below the checkpoint's position: skip it (the relay
  //           published it again), moving only the offset;
  //         - otherwise applyAccountEvent(client, event), and the checkpoint becomes
  //           { partition, offset, position: event.position };
  //       saveCheckpoint(client, ...) if it moved, and let inTransaction COMMIT.
  //     Any other error must escape (ROLLBACK, and kafkajs retries the batch). After the commit,
  //     remember the checkpoint (for the next GROUP_JOIN), resolveOffset(its offset), heartbeat().
  //  4. Return { stop } that disconnects the consumer.
  throw new Error('TODO: startAccountProjection');
}

/**
 * Rebuilds the read model from scratch: empties it and forgets the checkpoints (one transaction),
 * replays the topic from the beginning until it has applied everything that was on it when the
 * rebuild began, then stops. Stop the live projection first; start it again afterwards and it
 * continues from the rebuilt checkpoints.
 */
export async function rebuildAccountProjection(options: RebuildOptions): Promise<void> {
  // TODO:
  //  1. In ONE transaction, delete every row of account_balances and this projection's rows of
  //     projection_checkpoints (projection = ACCOUNT_BALANCES, this topic): no moment where one is
  //     empty and the other is not.
  //  2. Note where the topic ends now: admin.fetchTopicOffsets(topic) gives low and high per partition.
  //  3. startAccountProjection(options): with no checkpoints, it starts at the oldest offsets.
  //  4. Poll loadCheckpoints (every 50 ms or so) until every partition that has records
  //     (high > low) has a checkpoint offset of at least high - 1; throw if options.timeoutMs
  //     (default 10 minutes) passes first. Stop the projection in every case.
  throw new Error('TODO: rebuildAccountProjection');
}
