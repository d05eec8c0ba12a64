import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';
import { dataschemaOf, ORDER_PLACED, typeOf } from './catalog.ts';
import { placeOrder } from './checkout.ts';
import { encodeMessage } from './envelope.ts';
import type { CloudEvent, OrderPlacedV1 } from './events.ts';
import { assertEventsExchange, eventsExchange, messageProperties, publishConfirmed } from './messaging.ts';

// A runnable demo: the checkout placing one order.
//   npx tsx lessons/12-event-contracts/main.ts          an order-placed v3 event, as the checkout sends it today
//   npx tsx lessons/12-event-contracts/main.ts v1       an order-placed v1 event, as the 2021 checkout sent it
// Start the services first (see service-main.ts) and watch them react.

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const topology = { namespace: process.env.NAMESPACE ?? 'shop' };
const variant = process.argv[2] ?? 'v3';
if (variant !== 'v3' && variant !== 'v1') {
  console.error(`usage: main.ts [v3|v1] (got "${variant}")`);
  process.exit(2);
}

const connection = await connect(url).catch((error: unknown) => {
  console.error(`cannot connect to RabbitMQ (AMQP_URL): ${error instanceof Error ? error.message : String(error)}`);
  return process.exit(1);
});
try {
  const channel = await connection.createConfirmChannel();
  await assertEventsExchange(channel, topology);
  const orderId = `o-${randomUUID().slice(0, 8)}`;
  if (variant === 'v3') {
    const event = await placeOrder(channel, topology, { orderId, customer: { id: 'c-17', email: 'ada@example.com' }, total: { amountMinor: 4250, currency: 'EUR' } });
    console.log(`published ${event.type} ${event.id} for order ${orderId}`);
  } else {
    // What an old checkout still in service sends: the v1 contract, written out by hand.
    const id = randomUUID();
    const legacy: CloudEvent<OrderPlacedV1> = {
      specversion: '1.0',
      id,
      source: '/legacy-checkout',
      type: typeOf(ORDER_PLACED, 1),
      time: new Date().toISOString(),
      datacontenttype: 'application/json',
      dataschema: dataschemaOf(ORDER_PLACED, 1),
      correlationid: id,
      data: { orderId, customerId: 'c-17', amount: 4250 },
    };
    await publishConfirmed(channel, eventsExchange(topology), legacy.type, encodeMessage(legacy), messageProperties(legacy));
    console.log(`published ${legacy.type} ${legacy.id} for order ${orderId}`);
  }
} finally {
  await connection.close();
}
