/**
 * Every kind of message the shop's services exchange, and the versions of its contract.
 *
 * A message's CloudEvents `type` is its name plus the version of the contract its `data` follows:
 * `com.example.orders.order-placed.v3`. Events are named as facts, in the past tense (something
 * that happened and cannot be refused); commands are named as imperatives (something one service
 * asks one other service to do).
 */

export const ORDER_PLACED = 'com.example.orders.order-placed';
export const CAPTURE_PAYMENT = 'com.example.payments.capture-payment';
export const PAYMENT_CAPTURED = 'com.example.payments.payment-captured';

export interface ContractEntry {
  kind: 'event' | 'command';
  /** The newest version: what producers publish and what handlers receive. */
  latest: number;
  /** Every version a consumer can read, each with its JSON Schema in contracts/. */
  schemas: Readonly<Record<number, string>>;
}

export const CATALOG = {
  [ORDER_PLACED]: {
    kind: 'event',
    latest: 3,
    schemas: { 1: 'order-placed.v1.json', 2: 'order-placed.v2.json', 3: 'order-placed.v3.json' },
  },
  [CAPTURE_PAYMENT]: { kind: 'command', latest: 1, schemas: { 1: 'capture-payment.v1.json' } },
  [PAYMENT_CAPTURED]: { kind: 'event', latest: 1, schemas: { 1: 'payment-captured.v1.json' } },
} as const satisfies Record<string, ContractEntry>;

export type MessageName = keyof typeof CATALOG;
export type EventName = { [N in MessageName]: (typeof CATALOG)[N]['kind'] extends 'event' ? N : never }[MessageName];
export type CommandName = Exclude<MessageName, EventName>;

export function isMessageName(name: string): name is MessageName {
  return Object.hasOwn(CATALOG, name);
}

export function isCommand(name: MessageName): name is CommandName {
  return CATALOG[name].kind === 'command';
}

export function latestVersion(name: MessageName): number {
  return CATALOG[name].latest;
}

/** The versions of a message this code can read, oldest first. */
export function knownVersions(name: MessageName): number[] {
  return Object.keys(CATALOG[name].schemas).map(Number).sort((a, b) => a - b);
}

/** `com.example.orders.order-placed` + 3 → `com.example.orders.order-placed.v3` */
export function typeOf(name: MessageName, version: number): string {
  return `${name}.v${version}`;
}

/** `com.example.orders.order-placed.v3` → { name: 'com.example.orders.order-placed', version: 3 } */
export function parseType(type: string): { name: string; version: number } | undefined {
  const match = /^(.+)\.v([1-9]\d*)$/.exec(type);
  return match ? { name: match[1]!, version: Number(match[2]) } : undefined;
}

/** The `dataschema` URI of a version: the `$id` of its contract file. */
export function dataschemaOf(name: MessageName, version: number): string {
  const [, , domain, message] = name.split('.');
  return `https://schemas.example.com/${domain}/${message}.v${version}.json`;
}

/** The file name of a version's JSON Schema in contracts/, or undefined for a version this code does not know. */
export function schemaFile(name: MessageName, version: number): string | undefined {
  return (CATALOG[name].schemas as Record<number, string>)[version];
}
