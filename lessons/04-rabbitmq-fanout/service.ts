import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'amqplib';
import { demoName } from './demo-names.ts';
import type { UserSignedUp } from './events.ts';
import { startSignupSubscriber } from './subscriber.ts';

// One subscribing service as its own process, the way it runs in production:
//   SERVICE_NAME=email npx tsx lessons/04-rabbitmq-fanout/service.ts
// Start several with different SERVICE_NAMEs (email, auth-keys, audit), then run main.ts.
// AMQP_URL says where RabbitMQ is (default amqp://guest:guest@127.0.0.1:5672). The exchange is
// <learner>.signups (COURSE_LEARNER, or user@host: see demo-names.ts) unless SIGNUP_EXCHANGE names
// another. HANDLE_MS makes each signup take that long to handle (default 0), to stop the service
// mid-signup and watch the signup come back.

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const exchange = process.env.SIGNUP_EXCHANGE ?? demoName('signups');
const service = process.env.SERVICE_NAME ?? 'email';
const handleMs = Number(process.env.HANDLE_MS ?? 0);
if (!Number.isInteger(handleMs) || handleMs < 0) {
  console.error(`HANDLE_MS must be a whole number of milliseconds, not ${JSON.stringify(process.env.HANDLE_MS)}`);
  process.exit(2);
}

/** What each service does with a signup; here it only says so. */
const actions: Record<string, (event: UserSignedUp) => string> = {
  email: (event) => `welcome email sent to ${event.email}`,
  'auth-keys': (event) => `auth key issued for ${event.userId}`,
  audit: (event) => `audit entry written for ${event.userId}`,
};

const connection = await connect(url);
let stopping = false;
connection.on('error', (error) => console.error(`[${service}] connection error: ${error.message}`));
connection.on('close', () => {
  if (stopping) return;
  // Exit and let the supervisor (systemd, Kubernetes…) restart us: the queue keeps our messages.
  console.error(`[${service}] lost the connection to RabbitMQ, exiting`);
  process.exit(1);
});

const channel = await connection.createChannel();
channel.on('error', (error) => console.error(`[${service}] channel error: ${error.message}`));

const { queue } = await startSignupSubscriber(channel, { exchange, service }, async (event) => {
  console.log(`[${service}] handling user.signed-up ${event.userId}`);
  await sleep(handleMs);
  const done = actions[service]?.(event) ?? 'done';
  console.log(`[${service}] handled user.signed-up ${event.userId}: ${done}`);
});
console.log(`[${service}] ready: consuming ${queue}`);

async function shutdown(): Promise<void> {
  stopping = true;
  // The channel first: its close travels behind the acks already sent on it.
  await channel.close().catch(() => {});
  await connection.close().catch(() => {});
  process.exit(0);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void shutdown());
