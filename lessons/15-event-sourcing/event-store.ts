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
  // TODO: appendToStream. On ONE connection (pool.connect()), in ONE transaction
  // (BEGIN ISOLATION LEVEL READ COMMITTED … COMMIT):
  // 1. Move the stream's row in `streams` from expectedVersion to newVersion, with a statement
  //    that matches only while the stream is at expectedVersion (for 0: create the row, unless it
  //    exists). Of two racing writers, the second one's statement waits for the first to commit,
  //    then matches nothing. When nothing matched, throw WrongExpectedVersionError with the
  //    version the stream is at (streamVersion, below). A SELECT of the version before the
  //    transaction is no check: racing writers all pass it.
  // 2. INSERT the events at versions expectedVersion + 1, + 2 …, in the batch's order, with their
  //    data and metadata as JSON ({} when an event has no metadata).
  // 3. COMMIT and return newVersion. On any error, ROLLBACK before rethrowing, and release the
  //    client in a finally block: it must go back to the pool outside any transaction.
  throw new Error('TODO: appendToStream');
}

/** The version a stream is at now: the number of its events (0 when it has none). */
async function streamVersion(db: pg.ClientBase, streamId: string): Promise<number> {
  const { rows } = await db.query<{ version: string }>('SELECT version FROM streams WHERE stream_id = $1', [streamId]);
  return rows[0] ? Number(rows[0].version) : 0;
}

/** A stream's events after `afterVersion`, in version order (at most `limit` of them). */
export async function readStream(pool: pg.Pool, streamId: string, afterVersion = 0, limit?: number): Promise<RecordedEvent[]> {
  // TODO: readStream: SELECT ${EVENT_COLUMNS} of the stream's events with a version above
  // afterVersion, in version order, LIMIT limit (LIMIT NULL means no limit); map the rows with
  // toRecordedEvent.
  throw new Error('TODO: readStream');
}

/**
 * The next events of all streams after a checkpoint, at most `limit`, for subscribers. Safe to
 * subscribe from: an event whose transaction is still in flight is never passed over, however
 * long it takes to commit.
 */
export async function readAll(pool: pg.Pool, after: Checkpoint = BEGINNING, limit = 100): Promise<RecordedEvent[]> {
  // TODO: readAll. Global positions are handed out when events are inserted and become visible
  // when their transaction commits, in another order: a reader that moves past position 11 while
  // position 10 is still uncommitted never sees 10. So:
  // - return only events whose transaction_id is older than every transaction still in flight:
  //   transaction_id < pg_snapshot_xmin(pg_current_snapshot());
  // - read in (transaction_id, global_position) order, after the checkpoint compared as that
  //   pair: ($1::xid8, $2::bigint); a newer transaction can hold a lower global position;
  // - at most `limit` events; map the rows with toRecordedEvent.
  throw new Error('TODO: readAll');
}
