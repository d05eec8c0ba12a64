import type { Channel, ConsumeMessage } from 'amqplib';
import type pg from 'pg';
import { inTransaction, type Tx } from './db.ts';
import { parseEvent, type SagaEvent } from './events.ts';
import { appendToOutbox } from './outbox.ts';

/**
 * A service's reaction to one event: it changes the service's own tables through `tx` and
 * returns the events that announce the outcome (often none). It never publishes by itself and
 * never calls another service: the events it returns go to the outbox in the same transaction.
 */
export type Reaction = (tx: Tx, event: SagaEvent) => Promise<SagaEvent[]>;

export interface DeliveryContext {
  /** Used in log lines, e.g. "inventory-service". */
  service: string;
  pool: pg.Pool;
  /** The channel the message was delivered on: ack and nack it there. */
  channel: Channel;
  react: Reaction;
  /** Call after a commit that wrote events to the outbox, so the relay publishes them at once. */
  onCommitted: () => void;
}

/**
 * Handles one delivery from the service's queue, exactly once in effect although RabbitMQ
 * delivers at least once: the event id goes into processed_events in the same transaction as
 * the reaction's changes and its outgoing events, and the message is acknowledged only after
 * that transaction has committed.
 */
export async function handleDelivery(context: DeliveryContext, message: ConsumeMessage): Promise<void> {
  const { service, pool, channel, react } = context;
  const parsed = parseEvent(message.content);
  if (!parsed.ok) {
    // It will never parse: requeueing it would only loop.
    console.error(`[${service}] rejected a malformed message (routing key ${message.fields.routingKey}): ${parsed.reason}`);
    channel.nack(message, false, false);
    return;
  }
  const { event } = parsed;
  let caused: SagaEvent[] | 'duplicate';
  try {
    caused = await inTransaction(pool, async (tx) => {
      const first = await tx.query(
        'INSERT INTO processed_events (event_id, event_type, order_id) VALUES ($1, $2, $3) ON CONFLICT (event_id) DO NOTHING',
        [event.eventId, event.type, event.orderId],
      );
      // Handled before (its transaction committed): a redelivery, or the same event published twice.
      if (first.rowCount === 0) return 'duplicate';
      const outgoing = await react(tx, event);
      await appendToOutbox(tx, outgoing);
      return outgoing;
    });
  } catch (error) {
    // Rolled back, processed_events row included: one more attempt, then give up (lesson 10 would
    // dead-letter it). A saga whose event was dropped still ends, at the order service's deadline.
    const requeue = !message.fields.redelivered;
    const reason = error instanceof Error ? error.message : String(error);
    console.error(`[${service}] ${event.type} ${event.eventId} for order ${event.orderId} failed${requeue ? ', will retry once' : ', dropped'}: ${reason}`);
    channel.nack(message, false, requeue);
    return;
  }
  channel.ack(message);
  if (caused === 'duplicate') {
    console.log(`[${service}] skipped ${event.type} ${event.eventId} for order ${event.orderId}: already processed`);
    return;
  }
  console.log(`[${service}] handled ${event.type} ${event.eventId} for order ${event.orderId}${caused.length ? ` -> ${caused.map((e) => e.type).join(', ')}` : ''}`);
  if (caused.length > 0) context.onCommitted();
}
