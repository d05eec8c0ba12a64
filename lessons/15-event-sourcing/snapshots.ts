import type pg from 'pg';
import { initialAccount, parseSnapshot, replay, streamIdOf, type AccountState } from './account.ts';
import { readStream } from './event-store.ts';

/**
 * Stores the account's state as the snapshot of its stream, so that later loads start from it
 * instead of from the first event. Keeps the newer snapshot when one is already stored.
 */
export async function saveSnapshot(pool: pg.Pool, account: AccountState): Promise<void> {
  // TODO: saveSnapshot: upsert the row of snapshots for the account's stream (streamIdOf) with
  // the state's version and the state itself as JSON (JSON.stringify(account)). A snapshot is a
  // cache, so replacing it is fine, but never with an older one (ON CONFLICT … DO UPDATE … WHERE).
  throw new Error('TODO: saveSnapshot');
}

/**
 * The account's current state: its latest snapshot (or the initial state when it has none) with
 * every event after the snapshot's version applied, once each. An account that was never opened
 * loads as the initial state, at version 0.
 */
export async function loadAccount(pool: pg.Pool, accountId: string): Promise<AccountState> {
  // TODO: loadAccount:
  // 1. read the stream's snapshot (if any) from snapshots, and start from its state
  //    (parseSnapshot), or from initialAccount(accountId);
  // 2. read the events after the starting state's version (readStream) and apply them with
  //    replay(). Only those: the events up to the snapshot's version are already in its state.
  throw new Error('TODO: loadAccount');
}
