import { toNumber, type Queryable } from './db.ts';
import type { RecordedEvent } from './events.ts';

/** The name this projection's checkpoints are stored under. */
export const ACCOUNT_BALANCES = 'account_balances';

/** Where a projection is in one partition: the last offset it handled and the last event it applied. */
export interface Checkpoint {
  partition: number;
  /** The last Kafka offset applied or skipped; -1n before the first record. */
  offset: bigint;
  /** The global position of the last event applied from this partition; 0 before the first. */
  position: number;
}

export function initialCheckpoint(partition: number): Checkpoint {
  return { partition, offset: -1n, position: 0 };
}

/**
 * What one event does to the read model. Run it inside the projection's transaction, together
 * with saveCheckpoint: it is not idempotent (a deposit applied twice is counted twice), so
 * something must make sure each event reaches it once.
 */
export async function applyAccountEvent(db: Queryable, event: RecordedEvent): Promise<void> {
  const { data, version, position, recordedAt } = event;
  if (event.type === 'AccountOpened') {
    await db.query(
      `INSERT INTO account_balances (account_id, owner, balance_cents, transactions, version, last_position, opened_at, updated_at)
       VALUES ($1, $2, 0, 0, $3, $4, $5, $5)`,
      [data.accountId, event.data.owner, version, position, recordedAt],
    );
  } else {
    const delta = event.type === 'MoneyDeposited' ? event.data.amountCents : -event.data.amountCents;
    const { rowCount } = await db.query(
      `UPDATE account_balances
          SET balance_cents = balance_cents + $2, transactions = transactions + 1, version = $3, last_position = $4, updated_at = $5
        WHERE account_id = $1`,
      [data.accountId, delta, version, position, recordedAt],
    );
    if (rowCount !== 1) throw new Error(`${event.type} at position ${position} is for account ${data.accountId}, which the read model does not have`);
  }
  faults.applied(event);
}

/** Every stored checkpoint of a projection on a topic, by partition (no locks: for seeking). */
export async function loadCheckpoints(db: Queryable, projection: string, topic: string): Promise<Map<number, Checkpoint>> {
  const { rows } = await db.query<CheckpointRow>(
    'SELECT partition, kafka_offset, global_position FROM projection_checkpoints WHERE projection = $1 AND topic = $2',
    [projection, topic],
  );
  return new Map(rows.map((row) => [row.partition, checkpointOf(row)]));
}

/**
 * Reads one partition's checkpoint and locks it until the transaction ends (creating it first if
 * the partition has none). Another instance that locks the same checkpoint waits here until this
 * transaction commits or rolls back, and then reads what it left.
 */
export async function lockCheckpoint(db: Queryable, projection: string, topic: string, partition: number): Promise<Checkpoint> {
  await db.query(
    `INSERT INTO projection_checkpoints (projection, topic, partition, kafka_offset, global_position)
     VALUES ($1, $2, $3, -1, 0) ON CONFLICT DO NOTHING`,
    [projection, topic, partition],
  );
  const { rows: [row] } = await db.query<CheckpointRow>(
    `SELECT partition, kafka_offset, global_position FROM projection_checkpoints
      WHERE projection = $1 AND topic = $2 AND partition = $3 FOR UPDATE`,
    [projection, topic, partition],
  );
  return checkpointOf(row!);
}

/** Stores a partition's checkpoint. Run it in the transaction that applied the events it covers. */
export async function saveCheckpoint(db: Queryable, projection: string, topic: string, checkpoint: Checkpoint): Promise<void> {
  faults.checkpointing();
  await db.query(
    `INSERT INTO projection_checkpoints (projection, topic, partition, kafka_offset, global_position)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (projection, topic, partition) DO UPDATE SET kafka_offset = EXCLUDED.kafka_offset, global_position = EXCLUDED.global_position`,
    [projection, topic, checkpoint.partition, checkpoint.offset.toString(), checkpoint.position],
  );
}

interface CheckpointRow {
  partition: number;
  kafka_offset: string;
  global_position: string;
}

function checkpointOf(row: CheckpointRow): Checkpoint {
  return { partition: row.partition, offset: BigInt(row.kafka_offset), position: toNumber(row.global_position) };
}

/**
 * Crash points, for trying by hand what the checks do: the process kills itself (SIGKILL: no
 * cleanup, no ROLLBACK, no goodbye to the group) at an exact moment.
 *   PROJECTION_CRASH_AFTER_APPLYING=K    right after applying its K-th event
 *   PROJECTION_CRASH_BEFORE_CHECKPOINT=K when it is about to store a checkpoint, once K events are applied
 */
const faults = {
  appliedCount: 0,
  applied(event: RecordedEvent): void {
    this.appliedCount += 1;
    if (this.appliedCount === crashPoint('PROJECTION_CRASH_AFTER_APPLYING')) {
      crash(`after applying ${this.appliedCount} events (the last: position ${event.position})`);
    }
  },
  checkpointing(): void {
    const after = crashPoint('PROJECTION_CRASH_BEFORE_CHECKPOINT');
    if (after !== undefined && this.appliedCount >= after) crash(`before storing a checkpoint, with ${this.appliedCount} events applied`);
  },
};

function crashPoint(name: string): number | undefined {
  const value = Number(process.env[name]);
  return Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

function crash(when: string): never {
  console.log(`simulated crash ${when}`);
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable: the process was killed');
}
