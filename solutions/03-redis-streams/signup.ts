import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { loadConfig } from './config.ts';
import { appendSignup } from './producer.ts';

// Records a signup in the log: `npx tsx lessons/03-redis-streams/signup.ts ada@example.com Ada`
// Unlike pub/sub, it waits in the stream for the email workers, even if none is running yet.
const [email, ...nameParts] = process.argv.slice(2);
const name = nameParts.join(' ');
if (!email || !name) {
  console.error('usage: npx tsx lessons/03-redis-streams/signup.ts <email> <name>');
  process.exit(1);
}

const config = loadConfig();
const redis = new Redis(config.redisUrl);
try {
  const event = { userId: randomUUID(), email: email.trim().toLowerCase(), name: name.trim(), signedUpAt: new Date().toISOString() };
  const id = await appendSignup(redis, config.stream, event, { maxLength: config.maxLength });
  console.log(`user-service: signup of ${event.email} appended to ${config.stream} as ${id}`);
} finally {
  await redis.quit();
}
