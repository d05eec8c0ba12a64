import { Redis } from 'ioredis';
import { loadConfig } from './config.ts';
import { closeOnShutdown, reportErrors } from './runtime.ts';
import { subscribeToSignups } from './subscriber.ts';

// The email service, a process of its own: `npx tsx lessons/02-redis-pubsub/email-service.ts`
const SERVICE = 'email-service';
const config = loadConfig();
const redis = new Redis(config.redisUrl);

const subscription = await subscribeToSignups(
  redis,
  config.signupChannel,
  async (event) => {
    // A real service would call its mail provider here.
    console.log(`${SERVICE}: welcome email sent to ${event.email} (user ${event.userId})`);
  },
  { onError: reportErrors(SERVICE) },
);

console.log(`${SERVICE} ready: subscribed to ${config.signupChannel}`);
closeOnShutdown(SERVICE, async () => {
  await subscription.close();
  await redis.quit();
});
