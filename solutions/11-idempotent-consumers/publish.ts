import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';
import { encodePaymentRequested, publishOptions, type PaymentRequested } from './events.ts';
import { assertPaymentQueue } from './topology.ts';

// The checkout side, for watching the consumer by hand:
//   npx tsx lessons/11-idempotent-consumers/publish.ts [how-many] [copies]
// publishes `how-many` payment requests (default 3), each `copies` times (default 2) with the same
// event id, as an at-least-once producer or a redelivering broker would.

const usage = 'usage: publish.ts [how-many (1 or more)] [copies of each (1 or more)]';
const count = Number(process.argv[2] ?? 3);
const copies = Number(process.argv[3] ?? 2);
if (!Number.isInteger(count) || count < 1 || !Number.isInteger(copies) || copies < 1) {
  console.error(usage);
  process.exit(2);
}
const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const queue = process.env.PAYMENT_QUEUE ?? 'payments.requested';

const events: PaymentRequested[] = Array.from({ length: count }, (_, i) => ({
  eventId: randomUUID(),
  type: 'payment.requested',
  occurredAt: new Date().toISOString(),
  orderId: `order-${1000 + i}`,
  customerId: 'ada@example.com',
  amountCents: 1999 + i * 500,
  currency: 'EUR',
}));

try {
  const connection = await connect(url);
  try {
    const channel = await connection.createConfirmChannel();
    await assertPaymentQueue(channel, queue);
    for (const event of events) {
      for (let copy = 0; copy < copies; copy++) channel.sendToQueue(queue, encodePaymentRequested(event), publishOptions(event));
    }
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
} catch (error) {
  console.error(`publish.ts: could not publish to ${queue}: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
for (const event of events) console.log(`published ${event.eventId} (${event.orderId}) ${copies} time(s)`);
