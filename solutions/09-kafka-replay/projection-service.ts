import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { groupTimingsFromEnv, kafkaFromEnv } from './kafka.ts';
import { demoName, learnerPrefix } from './learner.ts';
import { startStockProjection } from './projector.ts';
import { FileStockReadModel, type StockReadModel } from './read-model.ts';

// The stock projection as a long-running service, its read model in a file that survives a crash:
//   npx tsx lessons/09-kafka-replay/projection-service.ts
// It reads <prefix>.warehouse-movements as group <prefix>.stock-levels (the prefix is yours: see
// learner.ts; STOCK_TOPIC and STOCK_GROUP set other names) into STOCK_STATE_FILE (by default a
// file of yours in the temporary directory).
//
// Crash simulation: CRASH_BEFORE_APPLYING=N kills the process (SIGKILL: no cleanup) just before
// the N-th movement reaches the read model, CRASH_AFTER_APPLYING=N just after, before your code can
// commit it. Start it again without them: it must end with every level right, each movement
// applied once.
const topic = demoName(process.env.STOCK_TOPIC, 'warehouse-movements');
const groupId = demoName(process.env.STOCK_GROUP, 'stock-levels');
const stateFile = process.env.STOCK_STATE_FILE?.trim() || join(tmpdir(), `${learnerPrefix()}.stock-levels.json`);
const crashBefore = Number(process.env.CRASH_BEFORE_APPLYING ?? 0);
const crashAfter = Number(process.env.CRASH_AFTER_APPLYING ?? 0);

const store = new FileStockReadModel(stateFile);
let applies = 0;
const readModel: StockReadModel = {
  apply: async (sku, delta, position) => {
    applies += 1;
    if (applies === crashBefore) crash(`before applying ${position.partition}:${position.offset}`);
    await store.apply(sku, delta, position);
    console.log(`applied ${position.partition}:${position.offset} ${sku} ${delta > 0 ? '+' : ''}${delta}`);
    if (applies === crashAfter) crash(`after applying ${position.partition}:${position.offset}`);
  },
  resumeOffset: (partition) => store.resumeOffset(partition),
  clear: () => store.clear(),
  levels: () => store.levels(),
};

const projection = await startStockProjection({ kafka: kafkaFromEnv('stock-projection'), topic, groupId, readModel, timings: groupTimingsFromEnv() });
console.log(`stock projection consuming ${topic} as group ${groupId} into ${stateFile}`);

function crash(where: string): void {
  console.log(`simulated crash ${where}`);
  process.kill(process.pid, 'SIGKILL');
}

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    if (stopping) return;
    stopping = true;
    projection.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error('stock projection did not stop cleanly:', error);
        process.exit(1);
      },
    );
  });
}
