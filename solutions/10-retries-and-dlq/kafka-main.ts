import { buyLabel } from './carrier.ts';
import { flagFromEnv, numberFromEnv, policyFromEnv, runMain } from './config.ts';
import { groupTimingsFromEnv, kafkaFromEnv } from './kafka.ts';
import { startRetryingConsumer } from './kafka-consumer.ts';
import { createRetryTopics, retryTopics } from './kafka-topics.ts';

// A label consumer on Kafka, as its own process:
//   SOURCE_TOPIC=label-requests RETRY_DELAYS_MS=1000,5000 npx tsx lessons/10-retries-and-dlq/kafka-main.ts
// It creates the source, retry and dead-letter topics if they are missing (TOPIC_PARTITIONS each,
// default 3); they are named after the source topic unless RETRY_TOPIC and DEAD_LETTER_TOPIC say.
// Requests for postcode 00000 always fail; CARRIER_FLAKINESS=0.3 fails 30% of the rest.
//
// Crash simulation: with CRASH_AFTER_FORWARD=1 the process kills itself (SIGKILL: no cleanup, no
// goodbye to the group) right after the first copy it forwards is acknowledged, before the offset
// of the failed record is committed.
runMain('kafka-main', async () => {
  const named = retryTopics(process.env.SOURCE_TOPIC ?? 'label-requests');
  const topics = { ...named, retry: process.env.RETRY_TOPIC ?? named.retry, deadLetter: process.env.DEAD_LETTER_TOPIC ?? named.deadLetter };
  const groupId = process.env.CONSUMER_GROUP ?? 'label-service';
  const policy = policyFromEnv('RETRY_DELAYS_MS', [1_000, 5_000]);
  const partitions = numberFromEnv('TOPIC_PARTITIONS', 3);
  const flakiness = numberFromEnv('CARRIER_FLAKINESS', 0);
  const crashAfterForward = flagFromEnv('CRASH_AFTER_FORWARD');
  const name = `consumer-${process.pid}`;
  const kafka = kafkaFromEnv(name);

  const admin = kafka.admin();
  await admin.connect();
  try {
    await createRetryTopics(admin, topics, partitions);
  } finally {
    await admin.disconnect();
  }

  const consumer = await startRetryingConsumer({
    kafka,
    topics,
    groupId,
    policy,
    timings: groupTimingsFromEnv(),
    handle: async (request, { attempt, maxAttempts, position }) => {
      console.log(`[${name}] delivery ${request.requestId} attempt=${attempt}/${maxAttempts} from ${position.topic}:${position.partition}@${position.offset}`);
      const tracking = await buyLabel(request, { flakiness });
      console.log(`[${name}] labelled ${request.requestId} -> ${tracking}`);
    },
    onForwarded: ({ key, attempt, to, topic, reason }) => {
      console.log(`[${name}] forwarded key ${key ?? '(none)'} attempt=${attempt} to ${to} topic ${topic}: ${reason}`);
      if (crashAfterForward) {
        console.log(`[${name}] simulated crash before committing`);
        process.kill(process.pid, 'SIGKILL');
      }
    },
  });
  console.log(`[${name}] ready: consuming ${topics.source} and ${topics.retry} in group ${groupId}`);

  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      if (stopping) return;
      stopping = true;
      consumer.stop().then(
        () => process.exit(0),
        (error: unknown) => {
          console.error(`[${name}] did not stop cleanly:`, error);
          process.exit(1);
        },
      );
    });
  }
});
