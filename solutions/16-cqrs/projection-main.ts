import { poolFromEnv } from './db.ts';
import { groupTimingsFromEnv, kafkaFromEnv } from './kafka.ts';
import { startAccountProjection } from './projection.ts';

// One instance of the account_balances projection. Start several to share the partitions:
//   ACCOUNT_TOPIC=account-events PROJECTION_GROUP=account-balances npx tsx lessons/16-cqrs/projection-main.ts
//
// Crash simulation (read-model.ts): PROJECTION_CRASH_AFTER_APPLYING=K kills the process right after
// it applies its K-th event, inside the batch's transaction; PROJECTION_CRASH_BEFORE_CHECKPOINT=K
// kills it when it is about to store a checkpoint once K events are applied. Look at the tables
// afterwards, then start it again.
const topic = process.env.ACCOUNT_TOPIC ?? 'account-events';
const groupId = process.env.PROJECTION_GROUP ?? 'account-balances';
const pool = (() => {
  try {
    return poolFromEnv();
  } catch (error) {
    console.error((error as Error).message);
    process.exit(1);
  }
})();

let projection;
try {
  projection = await startAccountProjection({
    pool,
    kafka: kafkaFromEnv(`account-projection-${process.pid}`),
    topic,
    groupId,
    timings: groupTimingsFromEnv(),
  });
} catch (error) {
  console.error(`the projection did not start: ${(error as Error).message}`);
  await pool.end();
  process.exit(1);
}
console.log(`projection ${process.pid} consuming ${topic} in group ${groupId}`);

const running = projection;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    running.stop().then(
      () => pool.end().then(() => process.exit(0)),
      (error: unknown) => {
        console.error('the projection did not stop cleanly:', error);
        process.exit(1);
      },
    );
  });
}
