import type pg from 'pg';
import { inTransaction, toNumber, type Queryable } from './db.ts';
import type { AccountEvent, RecordedEvent } from './events.ts';

/** Another command appended to the stream since this one read it: read again and decide again. */
export class ConcurrencyError extends Error {
  override name = 'ConcurrencyError';
  constructor(readonly streamId: string, readonly expectedVersion: number) {
    super(`stream ${streamId} is no longer at version ${expectedVersion}`);
  }
}

export interface AppendResult {
  /** The stream's version after the append (the version of its last new event). */
  version: number;
  /** The global position of the last new event: what a reader waits for to see this write. */
  position: number;
}

/**
 * Appends events to a stream, in one transaction, if the stream is still at `expectedVersion`
 * (0: the stream must not exist yet). Throws ConcurrencyError otherwise, and appends nothing.
 */
export async function appendToStream(
  pool: pg.Pool,
  streamId: string,
  expectedVersion: number,
  events: readonly AccountEvent[],
): Promise<AppendResult> {
  if (events.length === 0) throw new Error('appendToStream needs at least one event');
  const version = expectedVersion + events.length;
  return inTransaction(pool, async (client) => {
    // One append at a time (readers are not blocked): positions are handed out and committed in
    // the same order, so the relay, reading by position, can never skip an event that commits late.
    await client.query('LOCK TABLE events IN EXCLUSIVE MODE');
    const claimed = expectedVersion === 0
      ? await client.query('INSERT INTO streams (stream_id, version) VALUES ($1, $2) ON CONFLICT (stream_id) DO NOTHING', [streamId, version])
      : await client.query('UPDATE streams SET version = $3 WHERE stream_id = $1 AND version = $2', [streamId, expectedVersion, version]);
    if (claimed.rowCount !== 1) throw new ConcurrencyError(streamId, expectedVersion);

    let position = 0;
    for (const [index, event] of events.entries()) {
      const { rows: [row] } = await client.query<{ global_position: string }>(
        `INSERT INTO events (stream_id, stream_version, type, data) VALUES ($1, $2, $3, $4) RETURNING global_position`,
        [streamId, expectedVersion + index + 1, event.type, event.data],
      );
      position = toNumber(row!.global_position);
    }
    return { version, position };
  });
}

interface EventRow {
  global_position: string;
  stream_id: string;
  stream_version: number;
  type: string;
  data: unknown;
  recorded_at: Date;
}

const COLUMNS = 'global_position, stream_id, stream_version, type, data, recorded_at';

function recorded(row: EventRow): RecordedEvent {
  return {
    type: row.type,
    data: row.data,
    streamId: row.stream_id,
    version: row.stream_version,
    position: toNumber(row.global_position),
    recordedAt: row.recorded_at.toISOString(),
  } as RecordedEvent;
}

/** Every event of one stream, oldest first: what a command reads to decide. */
export async function readStream(db: Queryable, streamId: string): Promise<RecordedEvent[]> {
  const { rows } = await db.query<EventRow>(`SELECT ${COLUMNS} FROM events WHERE stream_id = $1 ORDER BY stream_version`, [streamId]);
  return rows.map(recorded);
}

/** Up to `limit` events after a global position, in position order: what the relay publishes. */
export async function readAllAfter(db: Queryable, position: number, limit: number): Promise<RecordedEvent[]> {
  const { rows } = await db.query<EventRow>(
    `SELECT ${COLUMNS} FROM events WHERE global_position > $1 ORDER BY global_position LIMIT $2`,
    [position, limit],
  );
  return rows.map(recorded);
}
