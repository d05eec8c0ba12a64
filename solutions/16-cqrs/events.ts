import { z } from 'zod';

/**
 * What happens to a bank account, as facts in the past tense. The event store keeps them for ever;
 * balances are derived from them, on the write side to decide and on the read side to answer.
 */
export interface AccountOpened {
  type: 'AccountOpened';
  data: { accountId: string; owner: string };
}

export interface MoneyDeposited {
  type: 'MoneyDeposited';
  data: { accountId: string; amountCents: number };
}

export interface MoneyWithdrawn {
  type: 'MoneyWithdrawn';
  data: { accountId: string; amountCents: number };
}

export type AccountEvent = AccountOpened | MoneyDeposited | MoneyWithdrawn;
export type AccountEventType = AccountEvent['type'];

/** An event as the store recorded it: which stream, which version in it, which global position, when. */
export type RecordedEvent = AccountEvent & {
  streamId: string;
  /** 1 for the first event of a stream, then 2, 3, … with no gaps. */
  version: number;
  /** The event's place among all events of the store; increasing in commit order. */
  position: number;
  /** When the store recorded it (ISO-8601). */
  recordedAt: string;
};

const amount = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

export const EVENT_DATA = {
  AccountOpened: z.strictObject({ accountId: z.string().min(1), owner: z.string().min(1) }),
  MoneyDeposited: z.strictObject({ accountId: z.string().min(1), amountCents: amount }),
  MoneyWithdrawn: z.strictObject({ accountId: z.string().min(1), amountCents: amount }),
} satisfies { [T in AccountEventType]: z.ZodType<Extract<AccountEvent, { type: T }>['data']> };

export function isAccountEventType(value: string): value is AccountEventType {
  return Object.hasOwn(EVENT_DATA, value);
}
