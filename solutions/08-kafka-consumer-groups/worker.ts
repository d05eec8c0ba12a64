import { groupTimingsFromEnv, kafkaFromEnv } from './kafka.ts';
import { demoName } from './learner.ts';
import { startOrderWorker } from './order-worker.ts';

// A fulfilment worker process: one member of the group. Start several to share the partitions:
//   npx tsx lessons/08-kafka-consumer-groups/worker.ts
// It reads <prefix>.orders as group <prefix>.fulfilment (the prefix is yours: see learner.ts);
// ORDERS_TOPIC and WORKER_GROUP set other names, exactly as given.
//
// Crash simulation: with CRASH_AFTER_PROCESSING=N the process kills itself (SIGKILL: no cleanup,
// no goodbye to the group) right after processing its N-th message, before that message's offset
// is committed. The checks use it to crash at an exact point; try it yourself, then start another
// worker and watch which message comes first.
const topic = demoName(process.env.ORDERS_TOPIC, 'orders');
const groupId = demoName(process.env.WORKER_GROUP, 'fulfilment');
const crashAfter = Number(process.env.CRASH_AFTER_PROCESSING ?? 0);
const timings = groupTimingsFromEnv();
let processed = 0;

const worker = await startOrderWorker({
  kafka: kafkaFromEnv(`order-worker-${process.pid}`),
  topic,
  groupId,
  timings,
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
if (crashAfter > 0) {
  // A killed member never says goodbye: the coordinator only drops it when its session times out.
  console.log(`crash switch on: after the crash, the group keeps this member and its partitions until its session ` +
    `times out (${timings.sessionTimeout / 1_000} s), so the next worker waits that long before it gets them. ` +
    'For a quicker demo start both with KAFKA_SESSION_TIMEOUT_MS=6000 KAFKA_HEARTBEAT_INTERVAL_MS=1000 KAFKA_REBALANCE_TIMEOUT_MS=6000.');
}

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
