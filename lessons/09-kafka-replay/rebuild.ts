import { groupTimingsFromEnv, kafkaFromEnv } from './kafka.ts';
import { demoName } from './learner.ts';
import { rebuildStockProjection, replayStartOffsets, type ReplayFrom } from './projector.ts';
import { InMemoryStockReadModel, type StockReadModel } from './read-model.ts';

// Rebuilds the stock levels by replaying the ledger, prints them and exits:
//   npx tsx lessons/09-kafka-replay/rebuild.ts                      (from the beginning)
//   npx tsx lessons/09-kafka-replay/rebuild.ts 2024-05-01T10:30:00Z (from that moment on)
// The topic and the group are <prefix>.warehouse-movements and <prefix>.stock-levels (the prefix is
// yours: see learner.ts); STOCK_TOPIC and STOCK_GROUP set other names, exactly as given.
const topic = demoName(process.env.STOCK_TOPIC, 'warehouse-movements');
const groupId = demoName(process.env.STOCK_GROUP, 'stock-levels');
const since = process.argv[2];
if (since && Number.isNaN(Date.parse(since))) throw new Error(`"${since}" is not a date and time`);
const from: ReplayFrom = since ? { timestamp: Date.parse(since) } : 'beginning';

const kafka = kafkaFromEnv('stock-rebuild');

// The rebuild is complete when it has applied every movement that was in the log when it began:
// from the replay's start offset up to the high watermark of each partition.
const admin = kafka.admin();
await admin.connect();
let expected = 0;
try {
  const start = new Map((await replayStartOffsets(admin, topic, from)).map((p) => [p.partition, Number(p.offset)]));
  for (const { partition, high } of await admin.fetchTopicOffsets(topic)) expected += Number(high) - (start.get(partition) ?? Number(high));
} finally {
  await admin.disconnect();
}

let applied = 0;
let finished: () => void = () => {};
const done = new Promise<void>((resolve) => (finished = resolve));
const count = () => {
  applied += 1;
  if (applied >= expected) finished();
};
const levels = new InMemoryStockReadModel();
const counting: StockReadModel = {
  apply: async (sku, delta, position) => {
    await levels.apply(sku, delta, position);
    count();
  },
  resumeOffset: (partition) => levels.resumeOffset(partition),
  clear: () => levels.clear(),
  levels: () => levels.levels(),
};

console.log(`replaying ${expected} movements of ${topic} ${since ? `since ${since}` : 'from the beginning'} as group ${groupId}`);
const projection = await rebuildStockProjection({
  kafka,
  topic,
  groupId,
  readModel: counting,
  from,
  timings: groupTimingsFromEnv(),
  onMalformed: (error, { partition, offset }) => {
    console.warn(`skipped ${partition}@${offset}: ${error.message}`);
    count();
  },
});
if (expected === 0) finished();
await done;
await projection.stop();
console.table(await levels.levels());
