import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';
import { Partitioners } from 'kafkajs';
import { UNSERVED_POSTCODE } from './carrier.ts';
import { ConfigError, numberFromEnv, runMain } from './config.ts';
import { kafkaFromEnv } from './kafka.ts';
import { createRetryTopics, retryTopics } from './kafka-topics.ts';
import { publishRequests } from './rabbit-publisher.ts';
import { assertRetryTopology, retryTopology } from './rabbit-topology.ts';
import { encodeRequest, type LabelRequest } from './requests.ts';

// Publishes label requests for the workers to chew on: `count` good ones, one for a postcode the
// carrier never serves (a poison message) and one that is not even JSON.
//   npx tsx lessons/10-retries-and-dlq/demo.ts rabbit [count]   (WORK_QUEUE, default labels)
//   npx tsx lessons/10-retries-and-dlq/demo.ts kafka [count]    (SOURCE_TOPIC, default label-requests)
// Watch the worker's log, then look at the dead letters: the .dlq queue in the management UI, or
//   kafka-console-consumer.sh --topic label-requests.dlq --from-beginning --property print.headers=true
runMain('demo', async () => {
  const broker = process.argv[2];
  const count = Number(process.argv[3] ?? 5);
  if (broker !== 'rabbit' && broker !== 'kafka') throw new ConfigError('usage: demo.ts rabbit|kafka [count]');
  if (!Number.isInteger(count) || count < 0) throw new ConfigError(`count must be a whole number, got "${process.argv[3]}"`);

  const requests: LabelRequest[] = Array.from({ length: count + 1 }, (_, i) => ({
    requestId: randomUUID(),
    orderId: `order-${1000 + i}`,
    postcode: i === count ? UNSERVED_POSTCODE : `1${String(i).padStart(4, '0')}`,
    weightGrams: 500 + 100 * i,
  }));
  const malformed = Buffer.from('{"requestId": "broken", "weightGrams": "heavy"');

  if (broker === 'rabbit') {
    const topology = retryTopology(process.env.WORK_QUEUE ?? 'labels', { delaysMs: [] });
    const connection = await connect(process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672');
    try {
      const channel = await connection.createConfirmChannel();
      // Only the exchange and the work queue: the workers declare the retry queues for their policy.
      await assertRetryTopology(channel, topology);
      await publishRequests(channel, topology, requests);
      channel.publish(topology.exchange, topology.routingKey, malformed, { persistent: true, messageId: 'broken' });
      await channel.waitForConfirms();
      console.log(`published ${requests.length + 1} requests to ${topology.exchange} (one unserved postcode, one malformed)`);
    } finally {
      await connection.close();
    }
    return;
  }

  const topics = retryTopics(process.env.SOURCE_TOPIC ?? 'label-requests');
  const kafka = kafkaFromEnv('label-demo');
  const admin = kafka.admin();
  await admin.connect();
  try {
    await createRetryTopics(admin, topics, numberFromEnv('TOPIC_PARTITIONS', 3));
  } finally {
    await admin.disconnect();
  }
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  await producer.connect();
  try {
    await producer.send({
      topic: topics.source,
      acks: -1,
      messages: [
        ...requests.map((request) => ({ key: request.orderId, value: encodeRequest(request) })),
        { key: 'order-broken', value: malformed },
      ],
    });
    console.log(`published ${requests.length + 1} requests to ${topics.source} (one unserved postcode, one malformed)`);
  } finally {
    await producer.disconnect();
  }
});
