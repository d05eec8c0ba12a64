import { setTimeout as sleep } from 'node:timers/promises';
import { describeError, poolFromEnv } from './db.ts';
import { BEGINNING, checkpointOf, readAll, type Checkpoint } from './event-store.ts';
import { migrate } from './migrate.ts';

// Follows every stream of the store, printing each event once, as soon as it is safe to read:
//   npx tsx lessons/15-event-sourcing/subscriber.ts
// POLL_MS (default 500) is how long it waits when it has caught up. It starts from the beginning
// and keeps its checkpoint in memory; a projection would store it with its read model (lesson 16).

const pollMs = Number(process.env.POLL_MS ?? 500);
if (!Number.isInteger(pollMs) || pollMs < 10 || pollMs > 60_000) {
  console.error(`subscriber: POLL_MS must be a whole number of milliseconds from 10 to 60000, not "${process.env.POLL_MS}"`);
  process.exit(2);
}

const pool = poolFromEnv('event-sourcing-subscriber');
const stopping = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.log(`subscriber: ${signal} received, stopping`);
    stopping.abort();
  });
}

try {
  await migrate(pool);
  let checkpoint: Checkpoint = BEGINNING;
  console.log('subscriber: reading all streams from the beginning');
  while (!stopping.signal.aborted) {
    const events = await readAll(pool, checkpoint, 100);
    for (const event of events) {
      console.log(`${event.transactionId}/${event.globalPosition}  ${event.streamId} v${event.version}  ${event.type} ${JSON.stringify(event.data)}`);
      checkpoint = checkpointOf(event);
    }
    // A full page means there is more to read at once; otherwise wait for new events.
    if (events.length < 100) await sleep(pollMs, undefined, { signal: stopping.signal }).catch(() => {});
  }
} catch (error) {
  console.error(`subscriber: ${describeError(error)}`);
  process.exitCode = 1;
} finally {
  await pool.end();
}
