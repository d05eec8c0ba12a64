import { connect, type Channel, type ChannelModel } from 'amqplib';
import pg from 'pg';
import { ConfigError, loadConfig, type ConsumerConfig } from './config.ts';
import { startPaymentConsumer, type PaymentConsumer } from './consumer.ts';
import { handlePaymentRequested } from './handler.ts';
import { applyMigrations } from './migrate.ts';
import { assertPaymentQueue } from './topology.ts';

// One instance of the payment service's consumer. Start one or several, each in its own terminal:
//   CONSUMER_NAME=payments-a npx tsx lessons/11-idempotent-consumers/payment-consumer.ts
// then publish payments with publish.ts. CRASH_AFTER_COMMIT=1 kills the process right after its
// first commit, before the ack: start another instance and watch it absorb the redelivery.

let config: ConsumerConfig;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`payment-consumer: ${error.message}`);
  process.exit(2);
}
const { name, subscriber, queue } = config;

const pool = new pg.Pool({ connectionString: config.databaseUrl, max: config.prefetch });
// An idle connection that breaks (the server restarted) is dropped by the pool; say so and go on.
pool.on('error', (error) => console.error(`[${name}] idle database connection failed: ${error.message}`));
let connection: ChannelModel | undefined;
let channel: Channel | undefined;
let consumer: PaymentConsumer | undefined;
let stopping = false;

/** Stops taking deliveries, lets those in progress commit and be acked, closes everything, exits. */
async function shutdown(code: number): Promise<never> {
  stopping = true;
  await consumer?.stop().catch(() => {});
  // The channel first: its close travels behind the acks already sent on it.
  await channel?.close().catch(() => {});
  await connection?.close().catch(() => {});
  await pool.end().catch(() => {});
  process.exit(code);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.log(`[${name}] ${signal} received: finishing the deliveries in progress`);
    void shutdown(0);
  });
}

try {
  await applyMigrations(pool);
  connection = await connect(config.amqpUrl);
  connection.on('error', (error: Error) => console.error(`[${name}] connection error: ${error.message}`));
  connection.on('close', () => {
    if (stopping) return;
    // Exit and let the supervisor restart us: unacknowledged deliveries are already back in the queue.
    console.error(`[${name}] lost the connection to RabbitMQ, exiting`);
    process.exit(1);
  });
  channel = await connection.createChannel();
  channel.on('error', (error: Error) => console.error(`[${name}] channel error: ${error.message}`));
  await assertPaymentQueue(channel, queue);

  consumer = await startPaymentConsumer(
    channel,
    queue,
    async (event, { redelivered }) => {
      const result = await handlePaymentRequested(pool, subscriber, event);
      const amount = `${(event.amountCents / 100).toFixed(2)} ${event.currency}`;
      console.log(
        `[${name}] ${result.status} ${event.eventId} (order ${event.orderId}, ${amount}) ` +
          `charge=${result.chargeId} redelivered=${redelivered}`,
      );
      if (config.crashAfterCommit) {
        // The gap at-least-once delivery leaves open: committed, not yet acknowledged.
        console.log(`[${name}] CRASH_AFTER_COMMIT: killing this process before the ack`);
        process.kill(process.pid, 'SIGKILL');
      }
    },
    { prefetch: config.prefetch, name },
  );
} catch (error) {
  // A service that cannot be reached (it has a code: ECONNREFUSED, a SQLSTATE…) is one line; a bug
  // in the code, a TODO included, keeps its stack so it says where it is.
  if (error instanceof Error && 'code' in error) console.error(`[${name}] could not start: ${error.message}`);
  else console.error(`[${name}] could not start:`, error);
  await shutdown(1);
}
console.log(`[${name}] ready: consuming ${queue} as subscriber "${subscriber}"`);
