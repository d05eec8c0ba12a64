import { randomUUID } from 'node:crypto';
import { Partitioners } from 'kafkajs';
import { encodeMovement } from './codec.ts';
import type { StockMovement } from './events.ts';
import { kafkaFromEnv } from './kafka.ts';
import { demoName } from './learner.ts';

// Writes a small warehouse ledger, a movement a minute over the last hour:
//   npx tsx lessons/09-kafka-replay/seed.ts
// to <prefix>.warehouse-movements (the prefix is yours: see learner.ts; STOCK_TOPIC sets another name).
const topic = demoName(process.env.STOCK_TOPIC, 'warehouse-movements');
const kafka = kafkaFromEnv('warehouse-seed');

const start = Date.now() - 60 * 60_000;
const at = (minute: number) => new Date(start + minute * 60_000).toISOString();
const movement = (minute: number, type: StockMovement['type'], sku: string, quantity: number): StockMovement =>
  type === 'stock.received'
    ? { type, movementId: randomUUID(), sku, quantity, at: at(minute) }
    : { type, movementId: randomUUID(), sku, quantity, at: at(minute), orderId: `order-${minute}` };

const ledger: StockMovement[] = [
  movement(0, 'stock.received', 'SKU-MUG', 20),
  movement(1, 'stock.received', 'SKU-KETTLE', 8),
  movement(5, 'stock.shipped', 'SKU-MUG', 3),
  movement(9, 'stock.shipped', 'SKU-KETTLE', 2),
  movement(14, 'stock.returned', 'SKU-MUG', 1),
  movement(20, 'stock.shipped', 'SKU-MUG', 4),
  movement(31, 'stock.returned', 'SKU-KETTLE', 2),
  movement(42, 'stock.received', 'SKU-TEAPOT', 6),
  movement(50, 'stock.returned', 'SKU-MUG', 2),
];

const admin = kafka.admin();
await admin.connect();
try {
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
} finally {
  await admin.disconnect();
}
const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
await producer.connect();
try {
  await producer.send({ topic, messages: ledger.map(encodeMovement), acks: -1 });
  console.log(`wrote ${ledger.length} movements to ${topic}, from ${ledger[0]!.at} to ${ledger.at(-1)!.at}`);
} finally {
  await producer.disconnect();
}
