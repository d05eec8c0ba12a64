import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';
import { demoName } from './demo-names.ts';
import { kindKey, orderHeaders, topicKey, type OrderEvent } from './orders.ts';
import { OrderEventPublisher } from './publisher.ts';
import { declareOrderRouting, type RoutingNames } from './routing.ts';
import type { Subscriber } from './subscribers.ts';

// A runnable demo: publish a few order events on all three exchanges, then show which
// subscriber's queue received what.
//   npx tsx lessons/06-rabbitmq-routing/main.ts
// Every name starts with your learner name (COURSE_LEARNER, or user@host), so demos of several
// learners on one shared broker never meet.

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const subscribers: Subscriber[] = ['billing', 'shipping', 'euWarehouse', 'standardDesk', 'expressDesk', 'audit', 'euExpress', 'riskReview'];
const names: RoutingNames = {
  kindExchange: demoName('orders.by-kind'),
  topicExchange: demoName('orders.by-topic'),
  headersExchange: demoName('orders.by-headers'),
  queues: Object.fromEntries(subscribers.map((s) => [s, demoName(`orders-demo.${s}`)])) as Record<Subscriber, string>,
};

function order(kind: OrderEvent['kind'], region: OrderEvent['region'], extra: Partial<OrderEvent> = {}): OrderEvent {
  return {
    eventId: randomUUID(), orderId: `ord-${randomUUID().slice(0, 6)}`, kind, region,
    tier: 'standard', payment: 'card', risk: 'low', totalCents: 4_990, occurredAt: new Date().toISOString(), ...extra,
  };
}

const events = [
  order('placed', 'eu'),
  order('placed', 'eu', { tier: 'express' }),
  order('placed', 'us', { payment: 'invoice' }),
  order('paid', 'us', { risk: 'high' }),
  order('refunded', 'apac'),
];

const connection = await connect(url);
try {
  const channel = await connection.createConfirmChannel();
  await declareOrderRouting(channel, names);
  const publisher = new OrderEventPublisher(channel);
  for (const event of events) {
    const byKind = await publisher.publish(names.kindExchange, kindKey(event), event);
    const byTopic = await publisher.publish(names.topicExchange, topicKey(event), event);
    const byHeaders = await publisher.publish(names.headersExchange, '', event, orderHeaders(event));
    console.log(`${topicKey(event).padEnd(26)} kind: ${byKind.padEnd(10)} topic: ${byTopic.padEnd(10)} headers: ${byHeaders}`);
  }
  console.log();
  for (const subscriber of subscribers) {
    const received: string[] = [];
    for (;;) {
      const message = await channel.get(names.queues[subscriber], { noAck: true });
      if (message === false) break;
      received.push(topicKey(JSON.parse(message.content.toString('utf8')) as OrderEvent));
    }
    console.log(`${subscriber.padEnd(13)} ${received.join(', ') || '(nothing)'}`);
  }
  // The demo's queues and exchanges go; in a real system they stay, and services keep consuming.
  for (const queue of Object.values(names.queues)) await channel.deleteQueue(queue);
  for (const exchange of [names.kindExchange, names.topicExchange, names.headersExchange]) await channel.deleteExchange(exchange);
} finally {
  await connection.close();
}
