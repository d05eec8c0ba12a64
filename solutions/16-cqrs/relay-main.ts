import { poolFromEnv } from './db.ts';
import { kafkaFromEnv } from './kafka.ts';
import { startRelay } from './relay.ts';

// Publishes new events from the event store to Kafka, in order, keyed by account:
//   ACCOUNT_TOPIC=account-events npx tsx lessons/16-cqrs/relay-main.ts
// Create the topic first, with the partitions you want (the relay never creates it).
const topic = process.env.ACCOUNT_TOPIC ?? 'account-events';
const pool = (() => {
  try {
    return poolFromEnv();
  } catch (error) {
    console.error((error as Error).message);
    process.exit(1);
  }
})();

let relay;
try {
  relay = await startRelay({ pool, kafka: kafkaFromEnv(`account-relay-${process.pid}`), topic });
} catch (error) {
  console.error(`the relay did not start: ${(error as Error).message}`);
  await pool.end();
  process.exit(1);
}
console.log(`relay publishing the event store to ${topic}`);

const running = relay;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    running.stop().then(
      () => pool.end().then(() => process.exit(0)),
      (error: unknown) => {
        console.error('the relay did not stop cleanly:', error);
        process.exit(1);
      },
    );
  });
}
