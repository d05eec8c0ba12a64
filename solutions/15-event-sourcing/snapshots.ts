import type pg from 'pg';
import { initialAccount, parseSnapshot, replay, streamIdOf, type AccountState } from './account.ts';
import { readStream } from './event-store.ts';

/**
 * Stores the account's state as the snapshot of its stream, so that later loads start from it
 * instead of from the first event. Keeps the newer snapshot when one is already stored.
 */
export async function saveSnapshot(pool: pg.Pool, account: AccountState): Promise<void> {
  // A snapshot is a cache, so overwriting it is fine, but never with an older one: two writers
  // snapshotting at once must not leave the stale state behind.
  await pool.query(
    `INSERT INTO snapshots (stream_id, version, state) VALUES ($1, $2, $3)
     ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, state = excluded.state, taken_at = now()
      WHERE snapshots.version < excluded.version`,
    [streamIdOf(account.accountId), account.version, JSON.stringify(account)],
  );
}

/**
 * The account's current state: its latest snapshot (or the initial state when it has none) with
 * every event after the snapshot's version applied, once each. An account that was never opened
 * loads as the initial state, at version 0.
 */
export async function loadAccount(pool: pg.Pool, accountId: string): Promise<AccountState> {
  const streamId = streamIdOf(accountId);
  const { rows } = await pool.query<{ state: unknown }>('SELECT state FROM snapshots WHERE stream_id = $1', [streamId]);
  const start = (rows[0] && parseSnapshot(accountId, rows[0].state)) ?? initialAccount(accountId);
  // Events are only ever appended, so the ones after the snapshot's version are exactly the ones
  // it has not seen, even if more were appended since it was taken.
  return replay(start, await readStream(pool, streamId, start.version));
}
