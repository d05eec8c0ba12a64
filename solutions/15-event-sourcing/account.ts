import { z } from 'zod';
import type { RecordedEvent } from './event-store.ts';
import { parseAccountEvent, type AccountEvent } from './events.ts';

/**
 * What the account's commands need to decide, folded from its events. Nothing here is stored as
 * the truth: it can always be rebuilt from the stream (and is, on every load).
 */
export interface AccountState {
  accountId: string;
  /** How many of the stream's events have been applied: the expected version for the next append. */
  version: number;
  status: 'not-opened' | 'open';
  owner: string | null;
  balanceCents: number;
  /** Versions of the deposits already reversed, so that none is reversed twice. */
  reversedDeposits: number[];
}

// Typed as AccountState, so the two cannot drift apart.
const AccountStateSchema: z.ZodType<AccountState> = z.strictObject({
  accountId: z.string(),
  version: z.number().int().nonnegative(),
  status: z.enum(['not-opened', 'open']),
  owner: z.string().nullable(),
  balanceCents: z.number().int(),
  reversedDeposits: z.array(z.number().int().positive()),
});

/**
 * A snapshot's stored state, if it still has the shape of AccountState. A snapshot taken by an
 * older release (before a field was added, say) is not used: replaying the events is always right.
 */
export function parseSnapshot(accountId: string, stored: unknown): AccountState | undefined {
  const parsed = AccountStateSchema.safeParse(stored);
  return parsed.success && parsed.data.accountId === accountId ? parsed.data : undefined;
}

/** Each account is one stream. */
export function streamIdOf(accountId: string): string {
  return `account-${accountId}`;
}

/** The state before the first event: what an account that was never opened looks like. */
export function initialAccount(accountId: string): AccountState {
  return { accountId, version: 0, status: 'not-opened', owner: null, balanceCents: 0, reversedDeposits: [] };
}

/**
 * Applies one event to the state and returns the new state, without changing the old one. This
 * is the only place that knows what each event means for the account. It never refuses an event:
 * events are facts that already happened; the rules live in the commands that append them.
 */
export function evolve(state: AccountState, event: AccountEvent): AccountState {
  switch (event.type) {
    case 'AccountOpened':
      return { ...state, status: 'open', owner: event.data.owner };
    case 'MoneyDeposited':
      return { ...state, balanceCents: state.balanceCents + event.data.amountCents };
    case 'MoneyWithdrawn':
      return { ...state, balanceCents: state.balanceCents - event.data.amountCents };
    case 'DepositReversed':
      return {
        ...state,
        balanceCents: state.balanceCents - event.data.amountCents,
        reversedDeposits: [...state.reversedDeposits, event.data.depositVersion],
      };
  }
}

/**
 * Folds recorded events into a state, each exactly once and in order: the event after a state at
 * version v must be version v + 1, or the result would count something twice or miss something.
 */
export function replay(state: AccountState, events: readonly RecordedEvent[]): AccountState {
  return events.reduce((current, recorded) => {
    if (recorded.streamId !== streamIdOf(current.accountId)) {
      throw new Error(`event ${recorded.version} of stream "${recorded.streamId}" is not an event of account "${current.accountId}"`);
    }
    if (recorded.version !== current.version + 1) {
      throw new Error(
        `event ${recorded.version} of stream "${recorded.streamId}" cannot be applied to a state at version ` +
          `${current.version}: each event is applied once, in order, after the state it follows`,
      );
    }
    return { ...evolve(current, parseAccountEvent(recorded)), version: recorded.version };
  }, state);
}
