import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { EventDraft, OutboxEvent } from './events.ts';

/** What the relay asks for in one round. */
export interface ClaimLimits {
  /** The most aggregates (orders) claimed at once. */
  aggregates: number;
  /** The most pending events taken from each claimed aggregate. */
  eventsPerAggregate: number;
}

/** One aggregate this relay holds until its transaction ends, with its oldest pending events. */
export interface ClaimedAggregate {
  aggregateId: string;
  /** In sequence order, starting with the aggregate's oldest unsent event. */
  events: OutboxEvent[];
}

interface OutboxRow {
  event_id: string;
  aggregate_type: string;
  aggregate_id: string;
  sequence: number;
  event_type: string;
  payload: Record<string, unknown>;
  occurred_at: Date;
}

const COLUMNS = 'event_id, aggregate_type, aggregate_id, sequence, event_type, payload, occurred_at';

function toEvent(row: OutboxRow): OutboxEvent {
  return {
    eventId: row.event_id,
    aggregateType: row.aggregate_type,
    aggregateId: row.aggregate_id,
    sequence: row.sequence,
    type: row.event_type,
    payload: row.payload,
    occurredAt: row.occurred_at.toISOString(),
  };
}

/**
 * Writes an event to the outbox, pending. Call it with the client of the transaction that makes
 * the change the event describes: the event then commits, or rolls back, with that change.
 */
export async function appendEvent(client: pg.ClientBase, draft: EventDraft): Promise<OutboxEvent> {
  const { rows } = await client.query<OutboxRow>(
    `INSERT INTO outbox (event_id, aggregate_type, aggregate_id, sequence, event_type, payload)
     VALUES ($1, $2, $3, $4, $5, $6)
     RETURNING ${COLUMNS}`,
    [randomUUID(), draft.aggregateType, draft.aggregateId, draft.sequence, draft.type, JSON.stringify(draft.payload)],
  );
  return toEvent(rows[0]!);
}

/**
 * Claims work for one relay round, inside the caller's transaction (READ COMMITTED, PostgreSQL's
 * default): up to `limits.aggregates` aggregates that have pending events and that no other relay
 * holds, each with its oldest pending events in sequence order. The claim is a transaction-level
 * advisory lock per aggregate, so it lasts until the caller commits or rolls back, and it is
 * released by PostgreSQL itself if the relay dies.
 *
 * Rows are chosen by `sent_at IS NULL`, never by "ids above the last one published": ids become
 * visible in commit order, not in id order.
 */
export async function claimBatch(client: pg.ClientBase, limits: ClaimLimits): Promise<ClaimedAggregate[]> {
  // MATERIALIZED keeps the lock call out of the aggregation: without it PostgreSQL evaluates it as a
  // filter on every group (every pending aggregate gets locked), not only on the ones LIMIT returns.
  const { rows: claimed } = await client.query<{ aggregate_id: string }>(
    `WITH pending AS MATERIALIZED (
       SELECT aggregate_id, min(id) AS oldest
       FROM outbox
       WHERE sent_at IS NULL
       GROUP BY aggregate_id
       ORDER BY oldest
     )
     SELECT aggregate_id
     FROM pending
     WHERE pg_try_advisory_xact_lock(hashtext('outbox'), hashtext(aggregate_id))
     LIMIT $1`,
    [limits.aggregates],
  );
  if (claimed.length === 0) return [];

  // A new statement, so a new snapshot: it sees whatever the relay that held these aggregates before
  // us committed (their events marked sent) and cannot publish those events a second time.
  const { rows } = await client.query<OutboxRow>(
    `SELECT ${COLUMNS}
     FROM (
       SELECT *, row_number() OVER (PARTITION BY aggregate_id ORDER BY sequence) AS position
       FROM outbox
       WHERE sent_at IS NULL AND aggregate_id = ANY($1::text[])
     ) AS pending
     WHERE position <= $2
     ORDER BY aggregate_id, sequence`,
    [claimed.map((row) => row.aggregate_id), limits.eventsPerAggregate],
  );
  const byAggregate = new Map<string, OutboxEvent[]>();
  for (const row of rows) {
    const events = byAggregate.get(row.aggregate_id) ?? [];
    events.push(toEvent(row));
    byAggregate.set(row.aggregate_id, events);
  }
  return [...byAggregate].map(([aggregateId, events]) => ({ aggregateId, events }));
}

/** Records that the broker confirmed these events, in the caller's transaction. */
export async function markSent(client: pg.ClientBase, eventIds: readonly string[]): Promise<void> {
  if (eventIds.length === 0) return;
  await client.query('UPDATE outbox SET sent_at = clock_timestamp() WHERE event_id = ANY($1::uuid[])', [eventIds]);
}
