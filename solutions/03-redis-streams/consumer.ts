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
    const { stream, group } = this.options;
    try {
      // '$': a new group starts with entries added from now on. MKSTREAM creates an empty stream.
      await this.redis.xgroup('CREATE', stream, group, '$', 'MKSTREAM');
    } catch (error) {
      // Another consumer of the group (or an earlier run) created it already.
      if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) throw error;
    }
  }

  /**
   * Reads this consumer's own pending entries: delivered to it before, never acknowledged (it
   * crashed, or the handler failed). ID 0 means "my pending entries from the start"; '>' would
   * only return entries never delivered to anyone, so these would stay pending forever.
   */
  private async recoverOwnPending(): Promise<void> {
    const { stream, group, consumer, batchSize } = this.options;
    let after = '0';
    while (this.running) {
      const reply = await this.redis.xreadgroup('GROUP', group, consumer, 'COUNT', batchSize, 'STREAMS', stream, after);
      const entries = entriesFromRead(reply);
      if (entries.length === 0) return;
      await this.handleAll(entries, await this.deliveryCounts(entries));
      after = entries.at(-1)!.id;
    }
  }

  /** Waits up to blockMs for entries never delivered to any consumer of the group. */
  private async readNew(): Promise<void> {
    const { stream, group, consumer, batchSize, blockMs } = this.options;
    const reply = await this.redis.xreadgroup(
      'GROUP', group, consumer, 'COUNT', batchSize, 'BLOCK', blockMs, 'STREAMS', stream, '>',
    );
    const entries = entriesFromRead(reply);
    await this.handleAll(entries, new Map(entries.map((entry) => [entry.id, 1])));
  }

  /**
   * Takes over entries that have been pending longer than claimMinIdleMs with any consumer of the
   * group: one that crashed, or this one after a failed attempt. The minimum idle time is what
   * keeps this from stealing an entry that a live, slow consumer is still working on.
   */
  private async claimAbandoned(): Promise<void> {
    const { stream, group, consumer, batchSize, claimMinIdleMs } = this.options;
    let cursor = '0-0';
    do {
      const claimed = fromAutoClaim(
        await this.redis.xautoclaim(stream, group, consumer, claimMinIdleMs, cursor, 'COUNT', batchSize),
      );
      if (claimed.entries.length > 0) await this.handleAll(claimed.entries, await this.deliveryCounts(claimed.entries));
      cursor = claimed.cursor;
    } while (cursor !== '0-0' && this.running);
  }

  private async handleAll(entries: StreamEntry[], deliveries: Map<string, number>): Promise<void> {
    for (const entry of entries) await this.handle(entry, deliveries.get(entry.id) ?? 1);
  }

  /** Handles one entry, and acknowledges it only once the handler has finished. */
  private async handle(entry: StreamEntry, deliveries: number): Promise<void> {
    let event: UserSignedUp;
    try {
      event = parseSignupEntry(entry.fields);
    } catch (error) {
      // No retry can fix a malformed entry: set it aside at once.
      await this.deadLetter(entry, deliveries, error instanceof Error ? error.message : String(error));
      return;
    }
    if (deliveries > this.options.maxDeliveries) {
      await this.deadLetter(entry, deliveries, `delivered ${deliveries} times, more than the limit of ${this.options.maxDeliveries}`);
      return;
    }
    try {
      await this.handler(event, { id: entry.id, deliveries });
    } catch (error) {
      // Not acknowledged: the entry stays pending and is claimed again after claimMinIdleMs.
      this.options.onError(error, { entryId: entry.id });
      return;
    }
    await this.redis.xack(this.options.stream, this.options.group, entry.id);
  }

  /** Copies the entry to the dead-letter stream and acknowledges it, in one transaction. */
  private async deadLetter(entry: StreamEntry, deliveries: number, reason: string): Promise<void> {
    const { stream, group, deadLetterStream } = this.options;
    const original = Object.entries(entry.fields ?? {}).flat();
    const results = await this.redis
      .multi()
      .xadd(deadLetterStream, '*', 'originalId', entry.id, 'stream', stream, 'group', group,
        'deliveries', String(deliveries), 'reason', reason, ...original)
      .xack(stream, group, entry.id)
      .exec();
    const failed = results?.find(([error]) => error)?.[0];
    if (failed) throw failed;
    this.options.onDeadLetter?.({ id: entry.id, deliveries, reason });
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
