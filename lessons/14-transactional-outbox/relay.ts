import pg from 'pg';
import { loadRelayConfig } from './config.ts';
import { migrate } from './migrate.ts';
import { startRelay } from './outbox-relay.ts';
import { closeOnShutdown, startOrExit } from './runtime.ts';

// The outbox relay as a process of its own: `npx tsx lessons/14-transactional-outbox/relay.ts`
// Run two or three: they share the outbox and keep each order's events in sequence.
// Settings (DATABASE_URL, AMQP_URL, OUTBOX_EXCHANGE, RELAY_*): see config.ts.

const config = await startOrExit('relay', async () => loadRelayConfig());
const { name } = config;
const pool = new pg.Pool({
  connectionString: config.databaseUrl,
  max: 2,
  // A relay that stalls mid-round (a frozen process) must not hold its aggregates forever: the
  // server ends a transaction left idle this long, which releases the relay's claims.
  idle_in_transaction_session_timeout: Math.max(30_000, 3 * config.publishTimeoutMs),
});
pool.on('error', (error) => console.error(`[${name}] idle database connection failed: ${error.message}`));
await startOrExit(name, () => migrate(pool));

const relay = startRelay({ ...config, pool });
console.log(`[${name}] ready: relaying the outbox to exchange "${config.exchange}" at ${new URL(config.amqpUrl).host}`);

closeOnShutdown(name, async () => {
  await relay.stop();
  await pool.end();
});
