import { groupTimingsFromEnv, kafkaFromEnv } from './kafka.ts';
import { startOrderWorker } from './order-worker.ts';

// A fulfilment worker process: one member of the group. Start several to share the partitions:
//   ORDERS_TOPIC=orders WORKER_GROUP=fulfilment npx tsx lessons/08-kafka-consumer-groups/worker.ts
//
// Crash simulation: with CRASH_AFTER_PROCESSING=N the process kills itself (SIGKILL: no cleanup,
// no goodbye to the group) right after processing its N-th message, before that message's offset
// is committed. The checks use it to crash at an exact point; try it yourself, then start another
// worker and watch which message comes first.
const topic = process.env.ORDERS_TOPIC ?? 'orders';
const groupId = process.env.WORKER_GROUP ?? 'fulfilment';
const crashAfter = Number(process.env.CRASH_AFTER_PROCESSING ?? 0);
let processed = 0;

const worker = await startOrderWorker({
  kafka: kafkaFromEnv(`order-worker-${process.pid}`),
  topic,
  groupId,
  timings: groupTimingsFromEnv(),
  handle: (event, { partition, offset }) => {
    console.log(`processed ${partition}:${offset} ${event.type} ${event.orderId}`);
    processed += 1;
    if (processed === crashAfter) {
      console.log(`simulated crash after processing ${partition}:${offset}`);
      process.kill(process.pid, 'SIGKILL');
    }
  },
});
console.log(`worker ${process.pid} consuming ${topic} in group ${groupId}`);

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    if (stopping) return;
    stopping = true;
    worker.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error('worker did not stop cleanly:', error);
        process.exit(1);
      },
    );
  });
}
