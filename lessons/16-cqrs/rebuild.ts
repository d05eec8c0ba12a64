import { poolFromEnv } from './db.ts';
import { groupTimingsFromEnv, kafkaFromEnv } from './kafka.ts';
import { rebuildAccountProjection } from './projection.ts';

// Rebuilds account_balances by replaying the topic from the beginning, then exits. Stop every
// projection instance first, and start them again afterwards:
//   ACCOUNT_TOPIC=account-events PROJECTION_GROUP=account-balances npx tsx lessons/16-cqrs/rebuild.ts
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

try {
  const started = Date.now();
  await rebuildAccountProjection({ pool, kafka: kafkaFromEnv('account-rebuild'), topic, groupId, timings: groupTimingsFromEnv() });
  const { rows: [row] } = await pool.query<{ accounts: number }>('SELECT count(*)::int AS accounts FROM account_balances');
  console.log(`rebuilt account_balances from ${topic}: ${row?.accounts ?? 0} accounts in ${Date.now() - started} ms`);
} catch (error) {
  console.error(`the rebuild failed: ${(error as Error).message}`);
  process.exitCode = 1;
} finally {
  await pool.end();
}
