import { Reservations } from './inventory.ts';
import { startInventoryConsumer } from './inventory-consumer.ts';
import { groupTimingsFromEnv, kafkaFromEnv } from './kafka.ts';
import { demoName } from './learner.ts';

// The inventory service, long-running: one member of the "inventory" consumer group.
// Run it: `npx tsx lessons/07-kafka-basics/inventory-service.ts` (KAFKA_BROKERS). It reads <prefix>.orders
// as group <prefix>.inventory, the prefix being yours (learner.ts); ORDERS_TOPIC and INVENTORY_GROUP set
// other names, exactly as given.
const topic = demoName(process.env.ORDERS_TOPIC, 'orders');
const groupId = demoName(process.env.INVENTORY_GROUP, 'inventory');
const reservations = new Reservations();

const consumer = await startInventoryConsumer({
  kafka: kafkaFromEnv('inventory-service'),
  topic,
  groupId,
  timings: groupTimingsFromEnv(),
  handle: ({ event, partition, offset, correlationId }) => {
    reservations.apply(event);
    console.log(`${event.type} ${event.orderId} (partition ${partition}, offset ${offset}, correlation ${correlationId})`);
    console.log(`  reserved now: ${JSON.stringify(reservations.reservedBySku())}`);
  },
});
console.log(`inventory service consuming ${topic} as group ${groupId}`);

// TODO: stop cleanly. On SIGTERM and on SIGINT, stop the consumer (it leaves the group, so its
// partitions move to the other members at once instead of after the session timeout), then exit
// with code 0 (or 1 if stopping failed). Make a second signal while stopping harmless.
