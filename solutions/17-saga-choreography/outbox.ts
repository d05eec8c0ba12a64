import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConfirmChannel } from 'amqplib';
import type pg from 'pg';
import { inTransaction, type Tx } from './db.ts';
import type { SagaEvent } from './events.ts';

/**
 * Writes events to the service's outbox, inside the caller's transaction: they are published if,
 * and only if, the state change they announce commits (lesson 14 builds this outbox step by step).
 */
export async function appendToOutbox(tx: Tx, events: readonly SagaEvent[]): Promise<void> {
  for (const event of events) {
    await tx.query('INSERT INTO outbox (event_id, event_type, payload) VALUES ($1, $2, $3)', [event.eventId, event.type, JSON.stringify(event)]);
  }
}

export interface RelayOptions {
  service: string;
  pool: pg.Pool;
  channel: ConfirmChannel;
  exchange: string;
  /** How often to look for events nobody announced (written before a crash, or by another instance). */
  intervalMs?: number;
  batchSize?: number;
}

/**
 * Publishes the outbox to the exchange, oldest first, each event with its type as the routing key
 * and its id as the message id. A row is marked published only after the broker has confirmed it;
 * a crash in between publishes it again, with the same id, and consumers skip the duplicate.
 */
export class OutboxRelay {
  private readonly intervalMs: number;
  private readonly batchSize: number;
  private running: Promise<void> | undefined;
  private stopped = false;
  private kicked = false;
  private wake: (() => void) | undefined;
  private lastError = '';

  constructor(private readonly options: RelayOptions) {
    this.intervalMs = options.intervalMs ?? 500;
    this.batchSize = options.batchSize ?? 100;
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Publish now: a transaction has just committed events to the outbox. */
  kick(): void {
    this.kicked = true;
    this.wake?.();
  }

  /** Finishes the batch in progress and stops. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      this.kicked = false;
      try {
        // A full batch means there may be more: go on until the outbox is drained.
        let published: number;
        do published = await this.publishBatch();
        while (published === this.batchSize && !this.stopped);
        this.lastError = '';
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        // Once per distinct problem, not once per interval.
        if (message !== this.lastError) console.error(`[${this.options.service}] outbox relay: ${message} (will retry)`);
        this.lastError = message;
      }
      if (this.stopped || this.kicked) continue;
      const woken = new AbortController();
      this.wake = () => woken.abort();
      await sleep(this.intervalMs, undefined, { signal: woken.signal }).catch(() => {});
      this.wake = undefined;
    }
  }

  private publishBatch(): Promise<number> {
    const { pool, channel, exchange } = this.options;
    return inTransaction(pool, async (tx) => {
      // SKIP LOCKED: a second instance of the service relays other rows instead of waiting.
      const { rows } = await tx.query<{ id: string; event_id: string; event_type: string; payload: SagaEvent }>(
        'SELECT id, event_id, event_type, payload FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED',
        [this.batchSize],
      );
      if (rows.length === 0) return 0;
      for (const row of rows) {
        const sent = channel.publish(exchange, row.event_type, Buffer.from(JSON.stringify(row.payload)), {
          persistent: true,
          contentType: 'application/json',
          messageId: row.event_id,
          type: row.event_type,
          appId: this.options.service,
        });
        if (!sent) await once(channel, 'drain');
      }
      // Rejects if the broker refused any of them: the rows stay unpublished and are sent again.
      await channel.waitForConfirms();
      await tx.query('UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])', [rows.map((row) => row.id)]);
      return rows.length;
    });
  }
}
