/**
 * ioredis returns stream replies as nested arrays typed `unknown`. These functions turn them into
 * named shapes, so the consumer reads like the Redis documentation.
 */

export interface StreamEntry {
  id: string;
  /** The entry's fields, or null when the entry is still pending but was trimmed from the stream. */
  fields: Record<string, string> | null;
}

export interface AutoClaimed {
  /** Where the next XAUTOCLAIM call continues; "0-0" when the whole pending list was scanned. */
  cursor: string;
  entries: StreamEntry[];
  /** Pending entries that no longer exist in the stream; Redis has removed them from the list. */
  deletedIds: string[];
}

export interface PendingEntry {
  id: string;
  consumer: string;
  idleMs: number;
  deliveries: number;
}

/** XREADGROUP / XREAD with one stream: [[stream, [[id, [field, value, …]], …]]], or null on timeout. */
export function entriesFromRead(reply: unknown): StreamEntry[] {
  if (reply === null || reply === undefined) return [];
  const streams = reply as Array<[string, unknown]>;
  return streams.flatMap(([, entries]) => entriesFromList(entries));
}

/** A list of entries as XRANGE and XAUTOCLAIM return it: [[id, [field, value, …] | null], …]. */
export function entriesFromList(list: unknown): StreamEntry[] {
  return (list as Array<[string, string[] | null]>).map(([id, flat]) => ({ id, fields: flat ? pairs(flat) : null }));
}

/** XAUTOCLAIM (Redis 7): [cursor, entries, deletedIds]. */
export function fromAutoClaim(reply: unknown): AutoClaimed {
  const [cursor, entries, deletedIds] = reply as [string, unknown, string[] | undefined];
  return { cursor, entries: entriesFromList(entries), deletedIds: deletedIds ?? [] };
}

/** XPENDING key group start end count [consumer]: [[id, consumer, idle, deliveries], …]. */
export function fromPendingRange(reply: unknown): PendingEntry[] {
  return (reply as Array<[string, string, number, number]>).map(([id, consumer, idleMs, deliveries]) => ({
    id,
    consumer,
    idleMs,
    deliveries,
  }));
}

function pairs(flat: string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
  return fields;
}
