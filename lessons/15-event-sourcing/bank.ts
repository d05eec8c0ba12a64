import type pg from 'pg';
import { streamIdOf, type AccountState } from './account.ts';
import { AccountError } from './errors.ts';
import { appendToStream, readStream } from './event-store.ts';
import { parseAccountEvent, toNewEvent, type AccountEvent } from './events.ts';
import { loadAccount } from './snapshots.ts';

// The commands. Each one follows the same three steps:
//   1. load the account (its state and the version it is at),
//   2. decide, by the rules, which events the command produces (or refuse it),
//   3. append them at the version loaded in step 1.
// If another command appended in between, step 3 throws WrongExpectedVersionError and nothing is
// stored: the decision was made on a state that no longer exists. Each returns the new version.

export async function openAccount(pool: pg.Pool, accountId: string, owner: string): Promise<number> {
  const account = await loadAccount(pool, accountId);
  if (account.status !== 'not-opened') throw new AccountError(`account "${accountId}" is already open`);
  if (owner.trim() === '') throw new AccountError('an account needs an owner');
  return append(pool, account, [{ type: 'AccountOpened', data: { owner } }]);
}

export async function deposit(pool: pg.Pool, accountId: string, amountCents: number, description?: string): Promise<number> {
  const account = await loadOpenAccount(pool, accountId);
  requireAmount(amountCents);
  return append(pool, account, [{ type: 'MoneyDeposited', data: description ? { amountCents, description } : { amountCents } }]);
}

export async function withdraw(pool: pg.Pool, accountId: string, amountCents: number): Promise<number> {
  const account = await loadOpenAccount(pool, accountId);
  requireAmount(amountCents);
  if (amountCents > account.balanceCents) {
    throw new AccountError(`insufficient funds in "${accountId}": balance ${account.balanceCents}, withdrawal ${amountCents} (cents)`);
  }
  return append(pool, account, [{ type: 'MoneyWithdrawn', data: { amountCents } }]);
}

/**
 * Corrects a deposit that was recorded with the wrong amount. The deposit stays in the history as
 * it was: a DepositReversed event takes its amount back out, and a new MoneyDeposited puts the
 * right amount in (none when the right amount is 0), both in one append.
 */
export async function correctDeposit(
  pool: pg.Pool,
  accountId: string,
  depositVersion: number,
  correctedAmountCents: number,
  reason: string,
): Promise<number> {
  // TODO: correctDeposit. Never change the deposit: history stays as it happened.
  // 1. Load the open account (loadOpenAccount). Refuse with AccountError: a negative or
  //    fractional correctedAmountCents, an empty reason, a depositVersion the stream does not
  //    have, an event at depositVersion that is not a MoneyDeposited (read it with readStream
  //    and parseAccountEvent), and a deposit that is already in account.reversedDeposits.
  // 2. Decide the compensating events: a DepositReversed { depositVersion, amountCents: the
  //    deposit's amount, reason }, then a MoneyDeposited of correctedAmountCents (none for 0).
  // 3. Append them together at the account's version (append, below) and return the new version.
  throw new Error('TODO: correctDeposit');
}

async function loadOpenAccount(pool: pg.Pool, accountId: string): Promise<AccountState> {
  const account = await loadAccount(pool, accountId);
  if (account.status !== 'open') throw new AccountError(`account "${accountId}" is not open`);
  return account;
}

function requireAmount(amountCents: number): void {
  if (!Number.isSafeInteger(amountCents) || amountCents <= 0) {
    throw new AccountError(`an amount is a whole number of cents > 0, not ${amountCents}`);
  }
}

/** Appends the decided events at the version the decision was based on. */
function append(pool: pg.Pool, account: AccountState, events: AccountEvent[]): Promise<number> {
  return appendToStream(pool, streamIdOf(account.accountId), account.version, events.map((event) => toNewEvent(event)));
}
