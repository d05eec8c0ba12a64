import { kafkaFromEnv } from './kafka.ts';

// Creates the topic the relay publishes to, with a chosen number of partitions (default 3):
//   ACCOUNT_TOPIC=account-events npx tsx lessons/16-cqrs/create-topic.ts 3
// Events of one account stay in one partition (they are keyed by account), so the partition count
// is the most projection instances that can work at once.
const topic = process.env.ACCOUNT_TOPIC ?? 'account-events';
const partitions = Number(process.argv[2] ?? 3);
if (!Number.isInteger(partitions) || partitions < 1) {
  console.error(`the partition count must be a whole number of at least 1, not "${process.argv[2]}"`);
  process.exit(1);
}

const admin = kafkaFromEnv('account-topic-setup').admin();
try {
  await admin.connect();
  if ((await admin.listTopics()).includes(topic)) {
    console.log(`${topic} already exists; left as it is`);
  } else {
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
    console.log(`created ${topic} with ${partitions} partitions`);
  }
} catch (error) {
  console.error(`could not create ${topic}: ${(error as Error).message}`);
  process.exitCode = 1;
} finally {
  await admin.disconnect();
}
