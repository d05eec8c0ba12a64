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
  // TODO:
  // 1. Parse the body with parseEvent(message.content). Malformed: log the reason and reject the
  //    message for good (channel.nack(message, false, false)): requeued, it would come back forever.
  // 2. In ONE transaction (inTransaction(pool, async (tx) => ...)):
  //    - insert the event id into processed_events (event_id, event_type, order_id), with
  //      ON CONFLICT (event_id) DO NOTHING; no row inserted means the event was handled before:
  //      do nothing more;
  //    - otherwise run react(tx, event) and write the events it returns with appendToOutbox(tx, ...).
  // 3. If the transaction throws, it has rolled back: log it and nack the message, requeueing it
  //    only if it was not redelivered already (message.fields.redelivered). Then return.
  // 4. Only now acknowledge the message (channel.ack), and call context.onCommitted() if the
  //    reaction wrote events, so the relay publishes them at once.
  throw new Error('TODO: handleDelivery');
}
