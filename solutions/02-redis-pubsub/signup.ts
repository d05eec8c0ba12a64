import { Redis } from 'ioredis';
import { loadConfig } from './config.ts';
import { UserService } from './user-service.ts';

// Signs a user up: `npx tsx lessons/02-redis-pubsub/signup.ts ada@example.com Ada`
// Start the services first, each in its own terminal, and watch them react.
const [email, ...nameParts] = process.argv.slice(2);
const name = nameParts.join(' ');
if (!email || !name) {
  console.error('usage: npx tsx lessons/02-redis-pubsub/signup.ts <email> <name>');
  process.exit(1);
}

const config = loadConfig();
const redis = new Redis(config.redisUrl);
try {
  const users = new UserService(redis, { channelPrefix: config.channelPrefix });
  const user = await users.signup({ email, name });
  console.log(`user-service: signed up ${user.email} as ${user.id}`);
} finally {
  await redis.quit();
}
