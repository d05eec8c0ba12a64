import { Redis } from 'ioredis';
import { loadConfig } from './config.ts';
import { closeOnShutdown, reportErrors } from './runtime.ts';
import { subscribeToUserEvents } from './subscriber.ts';

// The audit service, a process of its own: `npx tsx lessons/02-redis-pubsub/audit-service.ts`
// It records every user event, whatever its type, through one pattern subscription.
const SERVICE = 'audit-service';
const config = loadConfig();
const redis = new Redis(config.redisUrl);

const subscription = await subscribeToUserEvents(
  redis,
  config.userEventsPattern,
  async (event, channel) => {
    const entry = { type: event.type, userId: event.userId, channel, recordedAt: new Date().toISOString() };
    await redis.rpush(config.auditLogKey, JSON.stringify(entry));
    console.log(`${SERVICE}: recorded ${event.type} for user ${event.userId}`);
  },
  { onError: reportErrors(SERVICE) },
);

console.log(`${SERVICE} ready: subscribed to ${config.userEventsPattern}`);
closeOnShutdown(SERVICE, async () => {
  await subscription.close();
  await redis.quit();
});
