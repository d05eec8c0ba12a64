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
  const account = await loadOpenAccount(pool, accountId);
  if (!Number.isSafeInteger(correctedAmountCents) || correctedAmountCents < 0) {
    throw new AccountError(`a corrected amount is a whole number of cents >= 0, not ${correctedAmountCents}`);
  }
  if (reason.trim() === '') throw new AccountError('a correction needs a reason');
  if (!Number.isSafeInteger(depositVersion) || depositVersion < 1 || depositVersion > account.version) {
    throw new AccountError(`account "${accountId}" has no event ${depositVersion} (it is at version ${account.version})`);
  }
  // The state does not keep every deposit (it would grow forever); read the one being corrected.
  const [recorded] = await readStream(pool, streamIdOf(accountId), depositVersion - 1, 1);
  const original = recorded && parseAccountEvent(recorded);
  if (!original || original.type !== 'MoneyDeposited') {
    throw new AccountError(`event ${depositVersion} of account "${accountId}" is ${original ? `a ${original.type}` : 'missing'}, not a deposit`);
  }
  if (account.reversedDeposits.includes(depositVersion)) {
    throw new AccountError(`deposit ${depositVersion} of account "${accountId}" has already been corrected`);
  }

  const events: AccountEvent[] = [
    { type: 'DepositReversed', data: { depositVersion, amountCents: original.data.amountCents, reason } },
  ];
  if (correctedAmountCents > 0) {
    events.push({
      type: 'MoneyDeposited',
      data: { amountCents: correctedAmountCents, description: `correction of deposit ${depositVersion}: ${reason}` },
    });
  }
  return append(pool, account, events);
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
