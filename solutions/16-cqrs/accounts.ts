import type pg from 'pg';
import { appendToStream, ConcurrencyError, readStream } from './event-store.ts';
import type { AccountEvent, RecordedEvent } from './events.ts';

/**
 * The command side. A command loads the account's stream from the event store (the write model),
 * checks the rules against it, and appends the new event with the version it read. It never looks
 * at the read model: that may be behind, and a rule checked against a stale balance is no rule.
 */

export class CommandRejected extends Error {
  override name = 'CommandRejected';
}

export interface CommandResult {
  accountId: string;
  /** The account's version after the command. */
  version: number;
  /** The global position of the new event: pass it to a query as `atLeast` to read your own write. */
  position: number;
}

/** What the rules need to know about an account, folded from its events. */
interface AccountState {
  version: number;
  open: boolean;
  balanceCents: number;
}

function fold(events: readonly RecordedEvent[]): AccountState {
  const state: AccountState = { version: 0, open: false, balanceCents: 0 };
  for (const event of events) {
    state.version = event.version;
    if (event.type === 'AccountOpened') state.open = true;
    else if (event.type === 'MoneyDeposited') state.balanceCents += event.data.amountCents;
    else state.balanceCents -= event.data.amountCents;
  }
  return state;
}

const ATTEMPTS = 5;

/**
 * Reads the stream, asks `decide` for the event to append, and appends it at the version read. When
 * another command got there first, reads again and decides again (the rules may now say no).
 */
async function execute(pool: pg.Pool, accountId: string, decide: (state: AccountState) => AccountEvent): Promise<CommandResult> {
  for (let attempt = 1; ; attempt++) {
    const state = fold(await readStream(pool, accountId));
    const event = decide(state);
    try {
      const { version, position } = await appendToStream(pool, accountId, state.version, [event]);
      return { accountId, version, position };
    } catch (error) {
      if (!(error instanceof ConcurrencyError) || attempt === ATTEMPTS) throw error;
    }
  }
}

function validAmount(amountCents: number): void {
  if (!Number.isSafeInteger(amountCents) || amountCents <= 0) throw new CommandRejected(`${amountCents} is not a positive whole number of cents`);
}

export async function openAccount(pool: pg.Pool, command: { accountId: string; owner: string }): Promise<CommandResult> {
  const { accountId, owner } = command;
  if (!accountId.trim() || !owner.trim()) throw new CommandRejected('an account needs an id and an owner');
  return execute(pool, accountId, (state) => {
    if (state.version > 0) throw new CommandRejected(`account ${accountId} already exists`);
    return { type: 'AccountOpened', data: { accountId, owner } };
  });
}

export async function deposit(pool: pg.Pool, command: { accountId: string; amountCents: number }): Promise<CommandResult> {
  const { accountId, amountCents } = command;
  validAmount(amountCents);
  return execute(pool, accountId, (state) => {
    if (!state.open) throw new CommandRejected(`account ${accountId} does not exist`);
    return { type: 'MoneyDeposited', data: { accountId, amountCents } };
  });
}

export async function withdraw(pool: pg.Pool, command: { accountId: string; amountCents: number }): Promise<CommandResult> {
  const { accountId, amountCents } = command;
  validAmount(amountCents);
  return execute(pool, accountId, (state) => {
    if (!state.open) throw new CommandRejected(`account ${accountId} does not exist`);
    if (state.balanceCents < amountCents) {
      throw new CommandRejected(`account ${accountId} holds ${state.balanceCents} cents, less than ${amountCents}`);
    }
    return { type: 'MoneyWithdrawn', data: { accountId, amountCents } };
  });
}
