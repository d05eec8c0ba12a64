import { randomUUID } from 'node:crypto';
import { streamIdOf } from './account.ts';
import { correctDeposit, deposit, openAccount, withdraw } from './bank.ts';
import { describeError, poolFromEnv } from './db.ts';
import { readStream } from './event-store.ts';
import { migrate } from './migrate.ts';
import { loadAccount, saveSnapshot } from './snapshots.ts';

// A runnable demo: an account's life as events, its state rebuilt from them, a snapshot, and the
// database refusing to change history.
//   npx tsx lessons/15-event-sourcing/main.ts [account-id]
// Run subscriber.ts in another terminal to watch the events arrive. DATABASE_URL picks the database.

const accountId = process.argv[2] ?? `demo-${randomUUID().slice(0, 8)}`;
if (!/^[A-Za-z0-9_-]{1,64}$/.test(accountId)) {
  console.error(`main: "${accountId}" is not an account id (letters, digits, - and _, at most 64)`);
  process.exit(2);
}

const pool = poolFromEnv('event-sourcing-demo');
const euros = (cents: number) => (cents / 100).toFixed(2);
try {
  const applied = await migrate(pool);
  if (applied.length > 0) console.log(`applied ${applied.join(', ')}`);

  if ((await loadAccount(pool, accountId)).status === 'not-opened') {
    await openAccount(pool, accountId, 'Ada Lovelace');
    const typo = await deposit(pool, accountId, 100_000, 'salary');
    await deposit(pool, accountId, 2_500, 'refund');
    await withdraw(pool, accountId, 4_000);
    // The salary was 100.00, typed as 1000.00: correct it with new events, never by editing it.
    await correctDeposit(pool, accountId, typo, 10_000, 'amount typed with an extra zero');
  } else {
    await deposit(pool, accountId, 1_000, 'another run of the demo');
  }

  console.log(`\nstream ${streamIdOf(accountId)}:`);
  for (const event of await readStream(pool, streamIdOf(accountId))) {
    console.log(`  v${event.version}  position ${event.globalPosition}  ${event.type.padEnd(15)} ${JSON.stringify(event.data)}`);
  }

  const account = await loadAccount(pool, accountId);
  console.log(`\nreplayed: ${account.owner}, balance ${euros(account.balanceCents)}, version ${account.version}`);
  await saveSnapshot(pool, account);
  console.log(`snapshot saved at version ${account.version}: the next load reads only the events after it`);

  const refused = await pool
    .query("UPDATE events SET data = jsonb_set(data, '{amountCents}', '1') WHERE stream_id = $1", [streamIdOf(accountId)])
    .then(() => 'the UPDATE went through: is migrations/002_immutable_events.sql written?', describeError);
  console.log(`\ntrying to edit history with an UPDATE: ${refused}`);
} catch (error) {
  console.error(`main: ${describeError(error)}`);
  process.exitCode = 1;
} finally {
  await pool.end();
}
