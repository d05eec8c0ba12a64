import { randomUUID } from 'node:crypto';
import type { OrderEvent } from './events.ts';
import { kafkaFromEnv } from './kafka.ts';
import { demoName } from './learner.ts';
import { OrderEventPublisher } from './order-publisher.ts';
import { ensureTopic } from './topics.ts';

// The order service, as a short-lived job: it publishes a few orders' events and exits.
// Run it: `npx tsx lessons/07-kafka-basics/order-service.ts` (KAFKA_BROKERS, ORDER_COUNT). It publishes
// to <prefix>.orders, the prefix being yours (learner.ts); ORDERS_TOPIC sets another name, exactly as given.
const topic = demoName(process.env.ORDERS_TOPIC, 'orders');
const orderCount = Number(process.env.ORDER_COUNT ?? 3);
const kafka = kafkaFromEnv('order-service');

const admin = kafka.admin();
await admin.connect();
try {
  await ensureTopic(admin, topic, 3);
} finally {
  await admin.disconnect();
}

const events = demoOrders(orderCount);
const publisher = new OrderEventPublisher(kafka, topic);
await publisher.connect();
try {
  await publisher.publish(events, { correlationId: `demo-${randomUUID()}` });
  console.log(`published ${events.length} events for ${orderCount} orders to ${topic}`);
} finally {
  // Without this the producer's connections keep the process alive after its work is done.
  await publisher.disconnect();
}

function demoOrders(count: number): OrderEvent[] {
  const events: OrderEvent[] = [];
  const now = () => new Date().toISOString();
  for (let i = 1; i <= count; i++) {
    const orderId = `order-${randomUUID()}`;
    events.push({ type: 'order.placed', eventId: randomUUID(), orderId, customerId: `customer-${i}`, lines: [{ sku: 'SKU-MUG', quantity: i }], placedAt: now() });
    events.push({ type: 'order.amended', eventId: randomUUID(), orderId, lines: [{ sku: 'SKU-MUG', quantity: i + 1 }], amendedAt: now() });
    if (i % 2 === 0) events.push({ type: 'order.cancelled', eventId: randomUUID(), orderId, reason: 'customer request', cancelledAt: now() });
  }
  return events;
}
