import { connect } from 'amqplib';
import { parseEnvelope } from './events.ts';
import { closeOnShutdown, startOrExit } from './runtime.ts';

// Prints every event the relay publishes: `npx tsx lessons/14-transactional-outbox/watch-events.ts`
// It flags what a consumer has to cope with: the same event twice (same event id), and an order's
// events out of sequence (which the relay must never cause).

const NAME = 'watch';
const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const exchange = process.env.OUTBOX_EXCHANGE ?? 'orders.events';

const connection = await startOrExit(NAME, () => connect(url));
connection.on('error', (error: Error) => console.error(`[${NAME}] connection error: ${error.message}`));
connection.on('close', () => {
  console.error(`[${NAME}] lost the connection to RabbitMQ, exiting`);
  process.exit(1);
});
const channel = await connection.createChannel();
await channel.assertExchange(exchange, 'topic', { durable: true });
// A queue of its own that disappears with this process: watching must not keep events for later.
const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
await channel.bindQueue(queue, exchange, '#');

const seen = new Set<string>();
const lastSequence = new Map<string, number>();
await channel.consume(
  queue,
  (message) => {
    if (!message) return;
    const parsed = parseEnvelope(message.content);
    if (!parsed.ok) {
      console.log(`[${NAME}] unreadable message: ${parsed.reason}`);
      return;
    }
    const { event } = parsed;
    const notes: string[] = [];
    if (seen.has(event.eventId)) notes.push('DUPLICATE (same event id: a consumer must skip it)');
    const previous = lastSequence.get(event.aggregateId) ?? 0;
    if (!seen.has(event.eventId) && event.sequence !== previous + 1) notes.push(`OUT OF SEQUENCE (expected #${previous + 1})`);
    seen.add(event.eventId);
    lastSequence.set(event.aggregateId, Math.max(previous, event.sequence));
    console.log(`${event.type} ${event.aggregateId} #${event.sequence} event ${event.eventId}${notes.length ? `  ${notes.join(', ')}` : ''}`);
  },
  { noAck: true },
);
console.log(`[${NAME}] watching exchange "${exchange}" (Ctrl-C to stop)`);

closeOnShutdown(NAME, async () => {
  connection.removeAllListeners('close');
  await connection.close();
});
