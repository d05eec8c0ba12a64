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

// Stop cleanly: leaving the group hands our partitions to the other members at once, instead of
// after the session timeout during which nobody would process them.
let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    if (stopping) return;
    stopping = true;
    consumer.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error('inventory service did not stop cleanly:', error);
        process.exit(1);
      },
    );
  });
}
