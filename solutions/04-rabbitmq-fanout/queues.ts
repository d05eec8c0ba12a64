import { connect } from 'amqplib';
import { demoName } from './demo-names.ts';
import { deadLetterQueueName, serviceQueueName } from './topology.ts';

// What the broker holds for each service: the signups ready in its queue and in its dead-letter
// queue, and how many consumers it has. It asks over AMQP, so it works on any broker AMQP_URL
// names, with or without the management plugin.
//   npx tsx lessons/04-rabbitmq-fanout/queues.ts [service…]      (default: email auth-keys audit)

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const exchange = process.env.SIGNUP_EXCHANGE ?? demoName('signups');
const services = process.argv.length > 2 ? process.argv.slice(2) : ['email', 'auth-keys', 'audit'];

const connection = await connect(url);
connection.on('error', () => {});
try {
  for (const service of services) {
    const queue = serviceQueueName(exchange, service);
    for (const name of [queue, deadLetterQueueName(queue)]) {
      // A passive declare of a missing queue closes its channel (404): one channel per question.
      const channel = await connection.createChannel();
      channel.on('error', () => {});
      try {
        const { messageCount, consumerCount } = await channel.checkQueue(name);
        console.log(`${name.padEnd(48)} ${String(messageCount).padStart(5)} ready  ${consumerCount} consumers`);
        await channel.close();
      } catch {
        console.log(`${name.padEnd(48)} (no such queue)`);
      }
    }
  }
} finally {
  await connection.close();
}
