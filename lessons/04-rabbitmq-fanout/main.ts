import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';
import { demoName } from './demo-names.ts';
import { publishSignup } from './publisher.ts';
import { assertSignupExchange } from './topology.ts';

// A runnable demo: the user service announcing one signup.
//   npx tsx lessons/04-rabbitmq-fanout/main.ts
// Start one or more service.ts processes first (see service.ts), or stop one, publish, and start
// it again: its queue kept the signup. AMQP_URL, SIGNUP_EXCHANGE and COURSE_LEARNER work as in
// service.ts.

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const exchange = process.env.SIGNUP_EXCHANGE ?? demoName('signups');

const connection = await connect(url);
try {
  // A confirm channel: waitForConfirms() resolves once the broker has taken the message.
  const channel = await connection.createConfirmChannel();
  await assertSignupExchange(channel, exchange);
  const event = { userId: randomUUID(), email: 'ada@example.com', name: 'Ada', signedUpAt: new Date().toISOString() };
  await publishSignup(channel, exchange, event);
  await channel.waitForConfirms();
  console.log(`published user.signed-up ${event.userId} to the "${exchange}" exchange`);
} finally {
  await connection.close();
}
