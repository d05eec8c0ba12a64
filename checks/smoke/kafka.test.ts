import { Kafka, logLevel, type Admin, type Consumer, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../support/names.ts';
import { serviceUrl } from '../support/services.ts';

/** Smoke check: the Kafka the course uses creates topics and serves consumer groups. */
describe('Kafka smoke check', () => {
  const topic = uniqueName('smoke-orders');
  const groupId = uniqueName('smoke-inventory');
  let kafka: Kafka;
  let admin: Admin;
  let producer: Producer | undefined;
  let consumer: Consumer | undefined;

  beforeAll(async () => {
    kafka = new Kafka({ clientId: 'course-smoke', brokers: serviceUrl('kafka').split(','), logLevel: logLevel.NOTHING });
    admin = kafka.admin();
    await admin.connect();
  });

  afterAll(async () => {
    await consumer?.disconnect().catch(() => {});
    await producer?.disconnect().catch(() => {});
    await admin.deleteGroups([groupId]).catch(() => {});
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.disconnect().catch(() => {});
  });

  it('produces to an admin-created topic and consumes through a consumer group', async () => {
    const created = await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }], waitForLeaders: true });
    expect(created, `the topic ${topic} should be new`).toBe(true);
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
    expect(metadata.topics[0]?.partitions.length, 'the broker should report the two partitions asked for').toBe(2);

    producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic,
      acks: -1,
      messages: [{ key: 'order-1', value: JSON.stringify({ type: 'order.placed', orderId: 'order-1' }), headers: { 'event-type': 'order.placed' } }],
    });

    consumer = kafka.consumer({ groupId });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const received = new Promise<{ key: string; value: string; header: string }>((resolve) => {
      void consumer!.run({
        eachMessage: async ({ message }) =>
          resolve({
            key: message.key?.toString() ?? '',
            value: message.value?.toString() ?? '',
            header: message.headers?.['event-type']?.toString() ?? '',
          }),
      });
    });
    const message = await received;
    expect(message, 'the group should receive the message as produced').toEqual({
      key: 'order-1',
      value: JSON.stringify({ type: 'order.placed', orderId: 'order-1' }),
      header: 'order.placed',
    });
    await consumer.disconnect();
    consumer = undefined;

    const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
    const committed = offsets[0]!.partitions.reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
    expect(committed, 'the group should have committed past the one message').toBe(1);
  });
});
