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
  // TODO: two queries, both on `client` (the relay's transaction).
  // 1. Claim aggregates: among the aggregates that have pending events (sent_at IS NULL), oldest
  //    first (min(id)), keep at most limits.aggregates of those whose transaction-level advisory
  //    lock you get: pg_try_advisory_xact_lock(hashtext('outbox'), hashtext(aggregate_id)). Put the
  //    grouping in a MATERIALIZED CTE and the lock in the outer WHERE, with the LIMIT: otherwise
  //    PostgreSQL may evaluate the lock on every group and lock aggregates you never return.
  // 2. Read their pending events, at most limits.eventsPerAggregate per aggregate (row_number()
  //    over the aggregate's events by sequence), ordered by aggregate and sequence.
  // Group them per aggregate (toEvent turns a row into an OutboxEvent). Never select by "id above the
  // last one published": ids become visible in commit order, not in id order.
  throw new Error('TODO: claimBatch');
}

/** Records that the broker confirmed these events, in the caller's transaction. */
export async function markSent(client: pg.ClientBase, eventIds: readonly string[]): Promise<void> {
  // TODO: set sent_at (clock_timestamp()) on these events, by event_id, in the caller's transaction.
  throw new Error('TODO: markSent');
}
