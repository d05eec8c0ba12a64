import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { loadConfig } from './config.ts';
import { closeOnShutdown, reportErrors } from './runtime.ts';
import { subscribeToSignups } from './subscriber.ts';

// The auth service, a process of its own: `npx tsx lessons/02-redis-pubsub/auth-service.ts`
const SERVICE = 'auth-service';
const config = loadConfig();
const redis = new Redis(config.redisUrl);

const subscription = await subscribeToSignups(
  redis,
  config.signupChannel,
  async (event) => {
    const key = `key_${randomBytes(16).toString('hex')}`;
    // An ordinary command on the service's connection: the subscription uses a connection of its own.
    await redis.hset(config.authKeysKey, event.userId, key);
    console.log(`${SERVICE}: key issued for user ${event.userId}`);
  },
  { onError: reportErrors(SERVICE) },
);

console.log(`${SERVICE} ready: subscribed to ${config.signupChannel}`);
closeOnShutdown(SERVICE, async () => {
  await subscription.close();
  await redis.quit();
});
