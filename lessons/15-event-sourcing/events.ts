import { z } from 'zod';
import type { NewEvent, RecordedEvent } from './event-store.ts';

// The facts an account's stream is made of, in the past tense. Amounts are whole cents: money is
// never a floating-point number. Each schema validates an event when it is read back, so a
// malformed row fails loudly instead of silently becoming a wrong balance.

const Cents = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

export const AccountOpenedSchema = z.strictObject({ owner: z.string().min(1) });
export const MoneyDepositedSchema = z.strictObject({ amountCents: Cents, description: z.string().optional() });
export const MoneyWithdrawnSchema = z.strictObject({ amountCents: Cents });
/**
 * The compensating event: a deposit recorded by mistake is not changed or removed, it is
 * reversed by a new event that takes its amount back out. The history shows both, and why.
 */
export const DepositReversedSchema = z.strictObject({
  /** The version of the MoneyDeposited event in the same stream that this reverses. */
  depositVersion: z.number().int().positive(),
  amountCents: Cents,
  reason: z.string().min(1),
});

export type AccountEvent =
  | { type: 'AccountOpened'; data: z.infer<typeof AccountOpenedSchema> }
  | { type: 'MoneyDeposited'; data: z.infer<typeof MoneyDepositedSchema> }
  | { type: 'MoneyWithdrawn'; data: z.infer<typeof MoneyWithdrawnSchema> }
  | { type: 'DepositReversed'; data: z.infer<typeof DepositReversedSchema> };

export type AccountEventType = AccountEvent['type'];

const SCHEMAS: { [T in AccountEventType]: z.ZodType<Extract<AccountEvent, { type: T }>['data']> } = {
  AccountOpened: AccountOpenedSchema,
  MoneyDeposited: MoneyDepositedSchema,
  MoneyWithdrawn: MoneyWithdrawnSchema,
  DepositReversed: DepositReversedSchema,
};

function isAccountEventType(type: string): type is AccountEventType {
  return Object.hasOwn(SCHEMAS, type);
}

/** A recorded event as an account event; throws, naming the event, if it is not a valid one. */
export function parseAccountEvent(recorded: RecordedEvent): AccountEvent {
  const where = `event ${recorded.version} of stream "${recorded.streamId}"`;
  if (!isAccountEventType(recorded.type)) throw new Error(`${where} has the unknown type "${recorded.type}"`);
  const parsed = SCHEMAS[recorded.type].safeParse(recorded.data);
  if (!parsed.success) throw new Error(`${where} (${recorded.type}) is malformed: ${z.prettifyError(parsed.error)}`);
  return { type: recorded.type, data: parsed.data } as AccountEvent;
}

/** An account event ready for appendToStream. */
export function toNewEvent(event: AccountEvent, metadata: NewEvent['metadata'] = {}): NewEvent {
  return { type: event.type, data: event.data, metadata };
}
