import { connect } from 'amqplib';
import type pg from 'pg';
import { SERVICES, type ServiceConfig, type ServiceName } from './config.ts';
import { handleDelivery, type Reaction } from './consumer.ts';
import { createPool, migrate } from './db.ts';
import type { SagaEventType } from './events.ts';
import { OutboxRelay } from './outbox.ts';
import { assertSagaTopology } from './topology.ts';

/** What makes a process one of the saga's services. */
export interface SagaServiceDefinition {
  name: ServiceName;
  /** The event types its queue is bound to: everything it reacts to, nothing else. */
  reactsTo: readonly SagaEventType[];
  react: Reaction;
}

export interface RunningService {
  pool: pg.Pool;
  relay: OutboxRelay;
  /** The schema the service's tables are in. */
  schema: string;
  /** Something more to close on SIGTERM or SIGINT, before the connections (run newest first). */
  onShutdown(close: () => Promise<void>): void;
}

/**
 * Starts a service: its own database pool and tables, its own connection to RabbitMQ, its queue
 * and bindings, the outbox relay, and a consumer that hands each delivery to handleDelivery, one
 * at a time. On SIGTERM or SIGINT it stops consuming, lets the event in progress finish, closes
 * everything and exits 0. If the broker connection is lost it exits 1: a supervisor restarts it,
 * and whatever it had not acknowledged is delivered again.
 */
export async function startSagaService(definition: SagaServiceDefinition, config: ServiceConfig): Promise<RunningService> {
  const { name } = definition;
  const pool = createPool(config.databaseUrl, name);
  const schema = await migrate(pool, SERVICES[name].schema);

  const connection = await connect(config.amqpUrl);
  let stopping = false;
  const lost = (what: string) => () => {
    if (stopping) return;
    console.error(`[${name}] lost the ${what} to RabbitMQ, exiting (unacknowledged events will be delivered again)`);
    process.exit(1);
  };
  connection.on('error', (error: Error) => console.error(`[${name}] connection error: ${error.message}`));
  connection.on('close', lost('connection'));
  const publishing = await connection.createConfirmChannel();
  const consuming = await connection.createChannel();
  for (const channel of [publishing, consuming]) {
    channel.on('error', (error: Error) => console.error(`[${name}] channel error: ${error.message}`));
    channel.on('close', lost('channel'));
  }

  await assertSagaTopology(consuming, config.exchange, config.queue, definition.reactsTo);
  const relay = new OutboxRelay({ service: name, pool, channel: publishing, exchange: config.exchange });
  relay.start();

  // One event at a time: the next is delivered once this one is acknowledged.
  await consuming.prefetch(1);
  let inFlight: Promise<void> = Promise.resolve();
  const context = { service: name, pool, channel: consuming, react: definition.react, onCommitted: () => relay.kick() };
  const { consumerTag } = await consuming.consume(
    config.queue,
    (message) => {
      if (!message) return; // The broker cancelled the consumer (the queue was deleted).
      inFlight = handleDelivery(context, message).catch((error: unknown) => {
        console.error(`[${name}] could not handle a delivery:`, error);
      });
    },
    { noAck: false },
  );

  const closers: Array<() => Promise<void>> = [];
  const shutdown = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.log(`[${name}] ${signal} received, stopping`);
    try {
      await consuming.cancel(consumerTag);
      await inFlight;
      for (const close of closers.reverse()) await close();
      await relay.stop();
      // Channels first: their close travels behind the acks already sent on them.
      await consuming.close();
      await publishing.close();
      await connection.close();
      await pool.end();
      process.exit(0);
    } catch (error) {
      console.error(`[${name}] could not stop cleanly: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    }
  };
  process.once('SIGTERM', (signal) => void shutdown(signal));
  process.once('SIGINT', (signal) => void shutdown(signal));

  console.log(`[${name}] ready: schema ${schema}, queue ${config.queue} bound to ${definition.reactsTo.join(', ')} on ${config.exchange}`);
  return { pool, relay, schema, onShutdown: (close) => void closers.push(close) };
}

/** Runs an entrypoint's start-up; a failure is one clear line and exit code 1, not a stack trace. */
export function runService(name: string, main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    console.error(`[${name}] cannot start: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
