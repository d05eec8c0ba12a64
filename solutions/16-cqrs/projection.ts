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
  const { pool, kafka, topic, groupId } = options;
  const onMalformed = options.onMalformed ??
    ((error, { partition, offset }) => console.warn(`[projection] skipped ${topic}/${partition}@${offset}: ${error.message}`));

  // Where each partition starts: just after its checkpoint, or at the oldest record if it has none.
  // This instance's own commits keep the map current; one taken over from another instance may be
  // behind the database, which only means records the checkpoint guard then skips.
  const checkpoints = await loadCheckpoints(pool, ACCOUNT_BALANCES, topic);
  const earliest = await earliestOffsets(kafka, topic);
  const startOf = (partition: number): string => {
    const checkpoint = checkpoints.get(partition);
    return checkpoint && checkpoint.offset >= 0n ? (checkpoint.offset + 1n).toString() : (earliest.get(partition) ?? '0');
  };

  // Topics are created on purpose, with a chosen partition count, never as a side effect of subscribing.
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false, ...(options.timings ?? DEFAULT_GROUP_TIMINGS) });
  // GROUP_JOIN fires once partitions are assigned, before they are fetched: seek each one to where
  // the read model says it is.
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    for (const partition of payload.memberAssignment[topic] ?? []) consumer.seek({ topic, partition, offset: startOf(partition) });
  });

  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      // The position lives in PostgreSQL; nothing is committed to the group.
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        const checkpoint = await applyBatch(pool, topic, batch, () => isRunning() && !isStale(), onMalformed);
        if (checkpoint.offset >= 0n) {
          checkpoints.set(batch.partition, checkpoint);
          resolveOffset(checkpoint.offset.toString());
        }
        await heartbeat();
      },
    });
  } catch (error) {
    await consumer.disconnect();
    throw error;
  }
  return { stop: () => consumer.disconnect() };
}

/**
 * Applies one batch of one partition in a single transaction: locks the partition's checkpoint,
 * applies every record after it, stores the new checkpoint, commits. Returns the checkpoint the
 * transaction committed. A crash anywhere before COMMIT leaves both as they were.
 */
async function applyBatch(
  pool: pg.Pool,
  topic: string,
  batch: Batch,
  stillOurs: () => boolean,
  onMalformed: NonNullable<ProjectionOptions['onMalformed']>,
): Promise<Checkpoint> {
  const { partition } = batch;
  return inTransaction(pool, async (client) => {
    // Locked until COMMIT: an instance that took this partition over in a rebalance, while this
    // one is still busy with it, waits here and then sees what this transaction applied.
    const stored = await lockCheckpoint(client, ACCOUNT_BALANCES, topic, partition);
    let checkpoint = stored;
    for (const message of batch.messages) {
      if (!stillOurs()) break;
      const offset = BigInt(message.offset);
      // Delivered again (a restart, a rebalance, a rewound group): already in the read model.
      if (offset <= checkpoint.offset) continue;
      let event: RecordedEvent | undefined;
      try {
        event = decodeEvent(message);
      } catch (error) {
        if (!(error instanceof MalformedEventError)) throw error;
        onMalformed(error, { partition, offset: message.offset });
      }
      // A position at or below the checkpoint is an event the relay published again after a crash.
      if (event && event.position > checkpoint.position) {
        await applyAccountEvent(client, event);
        checkpoint = { partition, offset, position: event.position };
      } else {
        checkpoint = { ...checkpoint, offset };
      }
    }
    if (checkpoint.offset !== stored.offset) await saveCheckpoint(client, ACCOUNT_BALANCES, topic, checkpoint);
    return checkpoint;
  });
}

async function earliestOffsets(kafka: Kafka, topic: string): Promise<Map<number, string>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return new Map((await admin.fetchTopicOffsets(topic)).map(({ partition, low }) => [partition, low]));
  } finally {
    await admin.disconnect();
  }
}

/**
 * Rebuilds the read model from scratch: empties it and forgets the checkpoints (one transaction),
 * replays the topic from the beginning until it has applied everything that was on it when the
 * rebuild began, then stops. Stop the live projection first; start it again afterwards and it
 * continues from the rebuilt checkpoints.
 */
export async function rebuildAccountProjection(options: RebuildOptions): Promise<void> {
  const { pool, kafka, topic } = options;
  const deadline = Date.now() + (options.timeoutMs ?? 600_000);

  await inTransaction(pool, async (client) => {
    await client.query('DELETE FROM account_balances');
    await client.query('DELETE FROM projection_checkpoints WHERE projection = $1 AND topic = $2', [ACCOUNT_BALANCES, topic]);
  });
  const admin = kafka.admin();
  await admin.connect();
  let ends: Array<{ partition: number; low: string; high: string }>;
  try {
    ends = await admin.fetchTopicOffsets(topic);
  } finally {
    await admin.disconnect();
  }

  const projection = await startAccountProjection(options);
  try {
    for (;;) {
      const checkpoints = await loadCheckpoints(pool, ACCOUNT_BALANCES, topic);
      const behind = ends.filter(({ partition, low, high }) =>
        BigInt(high) > BigInt(low) && (checkpoints.get(partition)?.offset ?? -1n) < BigInt(high) - 1n);
      if (behind.length === 0) return;
      if (Date.now() > deadline) throw new Error(`the rebuild has not caught up on partitions ${behind.map((p) => p.partition).join(', ')} of ${topic}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    await projection.stop();
  }
}
