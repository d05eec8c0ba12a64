import { setTimeout as delay } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { parseSignupEntry, type UserSignedUp } from './events.ts';
import { entriesFromRead, fromAutoClaim, fromPendingRange, type StreamEntry } from './stream-replies.ts';

/** How the handler learns which entry it is working on, and how often it has been delivered. */
export interface Delivery {
  id: string;
  deliveries: number;
}

export type SignupHandler = (event: UserSignedUp, delivery: Delivery) => Promise<void>;

export interface DeadLetter {
  id: string;
  deliveries: number;
  reason: string;
}

export interface ConsumerOptions {
  stream: string;
  /** The consumer group: one per service that reads the log (email, analytics, …). */
  group: string;
  /** This consumer's name in the group. Keep it stable across restarts: pending entries are kept under it. */
  consumer: string;
  /** Where entries go that cannot be handled: malformed, or delivered more than maxDeliveries times. */
  deadLetterStream: string;
  /** An entry delivered more often than this is dead-lettered instead of handled again. */
  maxDeliveries: number;
  /** How long an entry must have been pending before it is claimed from the consumer holding it. */
  claimMinIdleMs: number;
  /** How often to look for such entries. Default 5 s. */
  claimIntervalMs?: number;
  /** Entries per read. Default 10. */
  batchSize?: number;
  /** How long one read waits for new entries. Default 2 s. */
  blockMs?: number;
  /** Every error: a failed handler (with the entry's ID), or a problem talking to Redis. */
  onError?: (error: unknown, context: { entryId?: string }) => void;
  onDeadLetter?: (entry: DeadLetter) => void;
}

type Settings = ConsumerOptions & Required<Pick<ConsumerOptions, 'claimIntervalMs' | 'batchSize' | 'blockMs' | 'onError'>>;

/**
 * One member of a consumer group reading the signup stream.
 *
 * Give it a connection of its own: a blocking XREADGROUP holds the connection while it waits.
 * Delivery is at-least-once: an entry is acknowledged only after the handler has finished, so a
 * crash means it is handled again (by this consumer after a restart, or by another one that claims
 * it). Handlers must therefore cope with seeing an entry twice.
 */
export class SignupConsumer {
  private readonly options: Settings;
  private running = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly redis: Redis,
    options: ConsumerOptions,
    private readonly handler: SignupHandler,
  ) {
    this.options = {
      ...options,
      claimIntervalMs: options.claimIntervalMs ?? 5_000,
      batchSize: options.batchSize ?? 10,
      blockMs: options.blockMs ?? 2_000,
      onError: options.onError ?? logError,
    };
  }

  /** Joins the group (creating it if needed), then consumes in the background until stop(). */
  async start(): Promise<void> {
    await this.ensureGroup();
    this.running = true;
    this.loop = this.run();
  }

  /** Finishes the entry in hand, stops reading, and resolves when the loop has ended. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  private async run(): Promise<void> {
    let recovered = false;
    let lastClaimAt = 0;
    while (this.running) {
      try {
        // First what this consumer had been given before a restart, then the rest.
        if (!recovered) {
          await this.recoverOwnPending();
          recovered = true;
        }
        if (Date.now() - lastClaimAt >= this.options.claimIntervalMs) {
          lastClaimAt = Date.now();
          await this.claimAbandoned();
        }
        await this.readNew();
      } catch (error) {
        this.options.onError(error, {});
        await delay(Math.min(this.options.blockMs, 1_000)); // do not spin while Redis is unreachable
      }
    }
  }

  private async ensureGroup(): Promise<void> {
    // TODO: create the consumer group on this.options.stream with XGROUP CREATE, starting at '$'
    // (entries added from now on) and with MKSTREAM, so it works before the first signup.
    // Every consumer of the group runs this: when the group exists already, Redis answers with an
    // error starting with "BUSYGROUP". Ignore that one, rethrow any other.
    throw new Error('TODO: ensureGroup');
  }

  /**
   * Reads this consumer's own pending entries: delivered to it before, never acknowledged (it
   * crashed, or the handler failed). ID 0 means "my pending entries from the start"; '>' would
   * only return entries never delivered to anyone, so these would stay pending forever.
   */
  private async recoverOwnPending(): Promise<void> {
    // TODO: read this consumer's own pending entries with XREADGROUP … STREAMS <stream> <id>, where
    // the ID is '0' at first and then the ID of the last entry you got, until a read returns none.
    // Parse replies with entriesFromRead, and handle each batch with
    // this.handleAll(entries, await this.deliveryCounts(entries)).
    throw new Error('TODO: recoverOwnPending');
  }

  /** Waits up to blockMs for entries never delivered to any consumer of the group. */
  private async readNew(): Promise<void> {
    // TODO: XREADGROUP GROUP <group> <consumer> COUNT <batchSize> BLOCK <blockMs> STREAMS <stream> '>'
    // and handle what it returns (entriesFromRead gives [] when the wait timed out). Entries read
    // with '>' are on their first delivery.
    throw new Error('TODO: readNew');
  }

  /**
   * Takes over entries that have been pending longer than claimMinIdleMs with any consumer of the
   * group: one that crashed, or this one after a failed attempt. The minimum idle time is what
   * keeps this from stealing an entry that a live, slow consumer is still working on.
   */
  private async claimAbandoned(): Promise<void> {
    // TODO: XAUTOCLAIM <stream> <group> <consumer> <claimMinIdleMs> <cursor> COUNT <batchSize>,
    // starting with the cursor '0-0'. fromAutoClaim reads the reply: handle its entries (they have
    // been delivered before: use this.deliveryCounts), then continue from its cursor until Redis
    // returns the cursor '0-0' again.
    throw new Error('TODO: claimAbandoned');
  }

  private async handleAll(entries: StreamEntry[], deliveries: Map<string, number>): Promise<void> {
    for (const entry of entries) await this.handle(entry, deliveries.get(entry.id) ?? 1);
  }

  /** Handles one entry, and acknowledges it only once the handler has finished. */
  private async handle(entry: StreamEntry, deliveries: number): Promise<void> {
    // TODO, in this order:
    // 1. parseSignupEntry(entry.fields); if it throws, the entry is malformed: dead-letter it at once
    //    with the error's message as the reason.
    // 2. If deliveries > this.options.maxDeliveries, dead-letter it instead of handling it again.
    // 3. Run this.handler(event, { id: entry.id, deliveries }). If it fails, report the error with
    //    this.options.onError(error, { entryId: entry.id }) and leave the entry pending.
    // 4. Acknowledge the entry (XACK) only when the handler has finished.
    throw new Error('TODO: handle');
  }

  /** Copies the entry to the dead-letter stream and acknowledges it, in one transaction. */
  private async deadLetter(entry: StreamEntry, deliveries: number, reason: string): Promise<void> {
    // TODO: in one MULTI transaction, XADD to this.options.deadLetterStream an entry with the fields
    // originalId, stream, group, deliveries, reason and the original entry's own fields, and XACK
    // the original. Then call this.options.onDeadLetter?.({ id: entry.id, deliveries, reason }).
    throw new Error('TODO: deadLetter');
  }

  /** How often each entry has been delivered so far, this delivery included (XPENDING). */
  private async deliveryCounts(entries: StreamEntry[]): Promise<Map<string, number>> {
    const { stream, group } = this.options;
    const pipeline = this.redis.pipeline();
    for (const entry of entries) pipeline.xpending(stream, group, entry.id, entry.id, 1);
    const replies = (await pipeline.exec()) ?? [];
    const counts = new Map<string, number>();
    for (const [error, reply] of replies) {
      if (error) throw error;
      for (const pending of fromPendingRange(reply)) counts.set(pending.id, pending.deliveries);
    }
    return counts;
  }
}

function logError(error: unknown, { entryId }: { entryId?: string }): void {
  console.error(entryId ? `[consumer] entry ${entryId} failed:` : '[consumer] error:', error);
}
