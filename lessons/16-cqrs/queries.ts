import type { Admin } from 'kafkajs';
import { toNumber, type Queryable } from './db.ts';
import { ACCOUNT_BALANCES, loadCheckpoints } from './read-model.ts';

/** An account as the read side shows it. */
export interface AccountView {
  accountId: string;
  owner: string;
  balanceCents: number;
  /** Deposits and withdrawals so far. */
  transactions: number;
  /** The account's version in the event store that this view has reached. */
  version: number;
  openedAt: string;
  updatedAt: string;
}

/** Every answer says how fresh it is. */
export interface AccountAnswer {
  /** null: the read model has no such account (yet). */
  account: AccountView | null;
  /**
   * The global position this answer reflects: the position of the last event of this account the
   * read model has applied (0 if none). Every event of the account at or before it is included.
   */
  position: number;
  /**
   * true when the caller asked for at least a position (typically that of its own write) and the
   * read model has not reached it for this account: the answer is older than what the caller knows.
   */
  stale: boolean;
}

export interface PartitionLag {
  partition: number;
  /** The last offset the projection has handled on this partition; null before the first. */
  checkpoint: string | null;
  /** The partition's end (high watermark): the offset the next record will get. */
  endOffset: string;
  /** Records on the partition that the projection has not handled yet. */
  lag: number;
}

export interface ProjectionLag {
  partitions: PartitionLag[];
  total: number;
}

interface AccountRow {
  account_id: string;
  owner: string;
  balance_cents: string;
  transactions: number;
  version: number;
  last_position: string;
  opened_at: Date;
  updated_at: Date;
}

/**
 * One account, read from the read model alone (never the event store). With `atLeast`, the answer
 * says whether it reflects that position yet.
 */
export async function getAccount(db: Queryable, accountId: string, atLeast?: number): Promise<AccountAnswer> {
  // TODO: SELECT the account's row from account_balances (and nothing else: never the event
  // store). position is the row's last_position (0 when there is no row); stale is true when
  // atLeast is given and position < atLeast, even when there is no row. Map the row to an
  // AccountView (bigint columns arrive as strings: toNumber; timestamps as Date: toISOString).
  throw new Error('TODO: getAccount');
}

/**
 * Read-your-writes: polls the read model until the account reflects `atLeast` or `timeoutMs` has
 * passed, and returns the last answer, which is still marked stale if the projection did not get
 * there in time. The caller decides what to show then ("your deposit is being processed").
 */
export async function waitForAccount(db: Queryable, accountId: string, atLeast: number, timeoutMs: number, pollMs = 25): Promise<AccountAnswer> {
  // TODO: call getAccount(db, accountId, atLeast) until the answer is not stale or timeoutMs has
  // passed (sleep pollMs between tries, never past the deadline); return the last answer.
  throw new Error('TODO: waitForAccount');
}

/**
 * How far the projection is behind the topic, per partition: the records between its checkpoint
 * and the partition's end. It says nothing about events the relay has not published yet; only a
 * position from the write side (`atLeast`) covers those.
 */
export async function projectionLag(db: Queryable, admin: Admin, topic: string): Promise<ProjectionLag> {
  // TODO: loadCheckpoints(db, ACCOUNT_BALANCES, topic) and admin.fetchTopicOffsets(topic). Per
  // partition: the next record to handle is checkpoint offset + 1 (or low without a checkpoint);
  // lag = high - next, never below 0. Sorted by partition, with the total.
  throw new Error('TODO: projectionLag');
}
