import type pg from 'pg';
import { WrongExpectedVersionError } from './errors.ts';

/** A JSON object: what an event's data and metadata are stored as (jsonb). */
export type JsonObject = { [key: string]: unknown };

/** An event about to be appended: what happened, and anything about the circumstances. */
export interface NewEvent {
  type: string;
  data: JsonObject;
  /** Who or what caused it (user, command, correlation id…); {} when omitted. */
  metadata?: JsonObject;
}

/** An event as the store recorded it. */
export interface RecordedEvent {
  streamId: string;
  /** 1, 2, 3 … within its stream, without gaps. */
  version: number;
  /** Unique across all streams; assigned at insert, so NOT in commit order. */
  globalPosition: bigint;
  /** The PostgreSQL transaction that appended it (xid8). */
  transactionId: bigint;
  type: string;
  data: JsonObject;
  metadata: JsonObject;
  recordedAt: Date;
}

/**
 * Where a subscriber is in the store: the last event it has read. Subscribers read in
 * (transactionId, globalPosition) order, and the checkpoint compares in that order too.
 */
export interface Checkpoint {
  transactionId: bigint;
  globalPosition: bigint;
}

/** Before the first event: a subscriber that starts here reads everything. */
export const BEGINNING: Checkpoint = Object.freeze({ transactionId: 0n, globalPosition: 0n });

/** The checkpoint just after an event: pass it to the next readAll. */
export function checkpointOf(event: RecordedEvent): Checkpoint {
  return { transactionId: event.transactionId, globalPosition: event.globalPosition };
}

/** The columns every read selects, in the shape toRecordedEvent expects. */
export const EVENT_COLUMNS = 'global_position, transaction_id, stream_id, version, type, data, metadata, recorded_at';

/** A row of `events` as node-postgres returns it: bigint and xid8 come back as strings. */
export interface EventRow {
  global_position: string;
  transaction_id: string;
  stream_id: string;
  version: string;
  type: string;
  data: JsonObject;
  metadata: JsonObject;
  recorded_at: Date;
}

export function toRecordedEvent(row: EventRow): RecordedEvent {
  return {
    streamId: row.stream_id,
    version: Number(row.version),
    globalPosition: BigInt(row.global_position),
    transactionId: BigInt(row.transaction_id),
    type: row.type,
    data: row.data,
    metadata: row.metadata,
    recordedAt: row.recorded_at,
  };
}

/**
 * Appends events to a stream, all or none, if the stream is still at `expectedVersion` (0: the
 * stream must not exist yet). Returns the stream's new version. Throws WrongExpectedVersionError,
 * and stores nothing, when another writer got there first.
 */
export async function appendToStream(
  pool: pg.Pool,
  streamId: string,
  expectedVersion: number,
  events: readonly NewEvent[],
): Promise<number> {
  if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0) {
    throw new RangeError(`expectedVersion must be a whole number >= 0, not ${expectedVersion}`);
  }
  if (events.length === 0) throw new RangeError(`nothing to append to stream "${streamId}"`);
  const newVersion = expectedVersion + events.length;

  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    // READ COMMITTED, whatever the server's default: a concurrent writer then makes our claim
    // below match no row (a conflict we report), instead of a serialization failure.
    await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
    // The version check and the claim on the new versions are one statement, in the transaction
    // that inserts the events. A concurrent writer's statement waits for the row lock (or, for a
    // new stream, for the conflicting insert) until we commit or roll back, then re-checks the
    // version it sees: only one writer can move the stream from expectedVersion.
    const claim =
      expectedVersion === 0
        ? await client.query('INSERT INTO streams (stream_id, version) VALUES ($1, $2) ON CONFLICT (stream_id) DO NOTHING', [
            streamId,
            newVersion,
          ])
        : await client.query('UPDATE streams SET version = $3 WHERE stream_id = $1 AND version = $2', [
            streamId,
            expectedVersion,
            newVersion,
          ]);
    if (claim.rowCount !== 1) {
      throw new WrongExpectedVersionError(streamId, expectedVersion, await streamVersion(client, streamId));
    }
    // One statement for the batch; ORDER BY keeps the global positions in the batch's order.
    await client.query(
      `INSERT INTO events (stream_id, version, type, data, metadata)
       SELECT $1, $2::bigint + e.n, e.type, e.data, e.metadata
         FROM unnest($3::text[], $4::jsonb[], $5::jsonb[]) WITH ORDINALITY AS e(type, data, metadata, n)
        ORDER BY e.n`,
      [
        streamId,
        expectedVersion,
        events.map((event) => event.type),
        events.map((event) => JSON.stringify(event.data)),
        events.map((event) => JSON.stringify(event.metadata ?? {})),
      ],
    );
    await client.query('COMMIT');
    return newVersion;
  } catch (error) {
    // Roll back before the connection goes back to the pool, or the next user of it finds a
    // failed transaction. If even that fails, the connection is dropped instead.
    broken = await client.query('ROLLBACK').then(() => undefined, (rollbackError: Error) => rollbackError);
    throw error;
  } finally {
    client.release(broken);
  }
}

async function streamVersion(db: pg.ClientBase, streamId: string): Promise<number> {
  const { rows } = await db.query<{ version: string }>('SELECT version FROM streams WHERE stream_id = $1', [streamId]);
  return rows[0] ? Number(rows[0].version) : 0;
}

/** A stream's events after `afterVersion`, in version order (at most `limit` of them). */
export async function readStream(pool: pg.Pool, streamId: string, afterVersion = 0, limit?: number): Promise<RecordedEvent[]> {
  const { rows } = await pool.query<EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM events WHERE stream_id = $1 AND version > $2 ORDER BY version LIMIT $3`,
    [streamId, afterVersion, limit ?? null],
  );
  return rows.map(toRecordedEvent);
}

/**
 * The next events of all streams after a checkpoint, at most `limit`, for subscribers. Safe to
 * subscribe from: an event whose transaction is still in flight is never passed over, however
 * long it takes to commit.
 */
export async function readAll(pool: pg.Pool, after: Checkpoint = BEGINNING, limit = 100): Promise<RecordedEvent[]> {
  // Global positions are handed out at insert and become visible at commit, in another order. Read
  // only events of transactions older than the oldest one still in flight (the snapshot's xmin):
  // every one of those has finished, so none can still add an event below what we return. Read
  // them in transaction order, because a later transaction id may hold a lower position.
  const { rows } = await pool.query<EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM events
      WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint)
        AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
      ORDER BY transaction_id, global_position
      LIMIT $3`,
    [after.transactionId, after.globalPosition, limit],
  );
  return rows.map(toRecordedEvent);
}
