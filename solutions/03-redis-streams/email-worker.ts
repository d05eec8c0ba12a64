import { Redis } from 'ioredis';
import { loadConfig } from './config.ts';
import { SignupConsumer } from './consumer.ts';
import { simulatedMailer } from './mailer.ts';
import { closeOnShutdown, describeError } from './runtime.ts';

// One instance of the email service: `CONSUMER_NAME=email-1 npx tsx lessons/03-redis-streams/email-worker.ts`
// Start a second one with CONSUMER_NAME=email-2 and they share the work.
const config = loadConfig();
const { stream } = config;
const { group, consumer: name } = config.consumer;
const mailer = simulatedMailer(config.mailer);
// The consumer's own connection: its blocking reads hold it while they wait. The name shows up in
// CLIENT LIST, so an operator can tell which consumer is which.
const redis = new Redis(config.redisUrl, { connectionName: `${group}:${name}` });

const consumer = new SignupConsumer(
  redis,
  {
    stream,
    ...config.consumer,
    onError: (error, { entryId }) =>
      console.error(entryId ? `[${name}] failed ${entryId}: ${describeError(error)}` : `[${name}] error: ${describeError(error)}`),
    onDeadLetter: ({ id, deliveries, reason }) =>
      console.log(`[${name}] dead-lettered ${id} after ${deliveries} deliveries: ${reason}`),
  },
  async (event, { id, deliveries }) => {
    console.log(`[${name}] processing ${id} (delivery ${deliveries}): welcome email to ${event.email}`);
    await mailer.sendWelcomeEmail(event.email, event.name);
    console.log(`[${name}] done ${id}`);
  },
);

await consumer.start();
console.log(`[${name}] ready: reading ${stream} as ${group}/${name}`);
closeOnShutdown(name, async () => {
  await consumer.stop();
  await redis.quit();
});
