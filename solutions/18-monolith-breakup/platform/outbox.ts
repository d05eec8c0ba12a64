import type { ConfirmChannel } from 'amqplib';
import type pg from 'pg';
import { inTransaction } from './db.ts';
import type { AnyEnvelope, Envelope, EventType } from './events.ts';
import { log, logError } from './log.ts';
import { REQUEST_ID_HEADER } from './http.ts';
import { sleep } from './runtime.ts';

/**
 * The transactional outbox of one service: an event is a row written in the same transaction as
 * the change it announces (so there is never a change without its event, or an event without its
 * change), and a relay publishes the rows to RabbitMQ afterwards, marking each one only once the
 * broker has confirmed it. A crash between the publish and the mark publishes it again: consumers
 * are idempotent. Every service's schema has its own `outbox` table (see its migrations).
 */

export async function appendToOutbox(client: pg.ClientBase, event: Envelope<EventType>): Promise<void> {
  await client.query('INSERT INTO outbox (event_id, type, envelope) VALUES ($1, $2, $3)', [event.eventId, event.type, JSON.stringify(event)]);
}

const BATCH_SIZE = 100;

/** Publishes one batch of unpublished events, oldest first; returns how many. */
export async function relayBatch(pool: pg.Pool, channel: ConfirmChannel, exchange: string): Promise<number> {
  return inTransaction(pool, async (client) => {
    // SKIP LOCKED: two instances of a service share the outbox without waiting for each other.
    const { rows } = await client.query<{ position: string; envelope: AnyEnvelope }>(
      `SELECT position, envelope FROM outbox WHERE published_at IS NULL ORDER BY position LIMIT $1 FOR UPDATE SKIP LOCKED`,
      [BATCH_SIZE],
    );
    if (rows.length === 0) return 0;
    for (const { envelope } of rows) {
      channel.publish(exchange, envelope.type, Buffer.from(JSON.stringify(envelope)), {
        persistent: true,
        contentType: 'application/json',
        messageId: envelope.eventId,
        type: envelope.type,
        headers: envelope.requestId ? { [REQUEST_ID_HEADER]: envelope.requestId } : {},
      });
    }
    await channel.waitForConfirms();
    await client.query('UPDATE outbox SET published_at = clock_timestamp() WHERE position = ANY($1::bigint[])', [rows.map((row) => row.position)]);
    return rows.length;
  });
}

export interface OutboxRelay {
  stop(): Promise<void>;
}

/** Relays in a loop until stopped: at once while there is work, every `pollMs` when idle. */
export function startOutboxRelay(service: string, pool: pg.Pool, channel: ConfirmChannel, exchange: string, pollMs: number): OutboxRelay {
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const sent = await relayBatch(pool, channel, exchange);
        if (sent > 0) log(service, undefined, `outbox: published ${sent} event${sent === 1 ? '' : 's'}`);
        else await sleep(pollMs);
      } catch (error) {
        if (stopped) break;
        logError(service, undefined, 'outbox relay', error);
        await sleep(Math.max(pollMs, 500));
      }
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
    },
  };
}
