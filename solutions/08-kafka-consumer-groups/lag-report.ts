import { kafkaFromEnv } from './kafka.ts';
import { consumerLag } from './lag.ts';
import { demoName } from './learner.ts';
import { planWorkerCount } from './scaling.ts';

// Prints a group's lag per partition and how many workers the policy would run:
//   LAG_PER_WORKER=1000 npx tsx lessons/08-kafka-consumer-groups/lag-report.ts
// for worker.ts's topic and group (<prefix>.orders, <prefix>.fulfilment; ORDERS_TOPIC and WORKER_GROUP set others).
const topic = demoName(process.env.ORDERS_TOPIC, 'orders');
const groupId = demoName(process.env.WORKER_GROUP, 'fulfilment');
const lagPerWorker = Number(process.env.LAG_PER_WORKER ?? 1_000);

const admin = kafkaFromEnv('lag-report').admin();
await admin.connect();
try {
  const lags = await consumerLag(admin, groupId, topic);
  console.log(`group ${groupId} on ${topic}`);
  console.log('partition  committed   earliest     latest        lag');
  for (const p of lags) {
    const cells = [p.partition, p.committed ?? '-', p.earliest, p.latest, p.lag].map((cell) => String(cell).padStart(9));
    console.log(cells.join('  '));
  }
  const total = lags.reduce((sum, p) => sum + p.lag, 0);
  console.log(`total lag ${total}; workers to run at ${lagPerWorker} per worker: ${planWorkerCount(lags, { lagPerWorker })}`);
} finally {
  await admin.disconnect();
}
