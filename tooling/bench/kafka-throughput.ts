import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { pathToFileURL } from 'node:url';
import type { OrderPlaced } from '../../lessons/07-kafka-basics/events.ts';
import type { OrderEventPublisher as Publisher } from '../../lessons/07-kafka-basics/order-publisher.ts';
import { SOLUTIONS_DIR, targetRoot } from '../course/paths.ts';
import { PROTOCOL_ENV } from '../course/protocol.ts';

/**
 * The producer measured is lesson 07's, taken through the same switch as the checks: the reference
 * solution by default, or whatever COURSE_TARGET_ROOT names (a learner's lessons/, for example).
 */
async function loadPublisher(): Promise<typeof Publisher> {
  const root = process.env[PROTOCOL_ENV.targetRoot] ? targetRoot() : SOLUTIONS_DIR;
  const module = (await import(pathToFileURL(join(root, '07-kafka-basics', 'order-publisher.ts')).href)) as { OrderEventPublisher: typeof Publisher };
  return module.OrderEventPublisher;
}

const run = promisify(execFile);

export interface KafkaThroughputOptions {
  /** host:port[,host:port] */
  brokers: string;
  messages?: number;
  /** Bytes per message value (the JSON body for the reference producer, the record for the tool). */
  messageSize?: number;
  /** A folder holding the Kafka jars (kafka-clients, kafka-tools and their dependencies). */
  libsDir: string;
  /** Partitions of each measured topic; both get the same count. */
  partitions?: number;
}

export interface KafkaThroughput {
  messages: number;
  messageSize: number;
  referencePerSecond: number;
  toolPerSecond: number;
  /** referencePerSecond / toolPerSecond */
  ratio: number;
}

/**
 * Measures the lesson 07 reference producer against Kafka's own ProducerPerformance tool on the
 * same broker: same message count and value size, acks=all for both, fresh topics with the same
 * partition count, no compression. The reference producer's time covers publish() only (it is
 * connected first); the tool reports its own rate, which likewise excludes JVM start-up.
 */
export async function measureKafkaThroughput(options: KafkaThroughputOptions): Promise<KafkaThroughput> {
  const messages = options.messages ?? 50_000;
  const messageSize = options.messageSize ?? 1_024;
  const partitions = options.partitions ?? 3;
  const brokers = options.brokers.split(',').map((b) => b.trim()).filter(Boolean);
  const kafka = new Kafka({ clientId: 'course-bench', brokers, logLevel: logLevel.ERROR });
  const suffix = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const referenceTopic = `bench-reference-${suffix}`;
  const toolTopic = `bench-tool-${suffix}`;

  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [referenceTopic, toolTopic].map((topic) => ({ topic, numPartitions: partitions })),
      waitForLeaders: true,
    });
    const referencePerSecond = await timeReferenceProducer(kafka, referenceTopic, messages, messageSize);
    const toolPerSecond = await runProducerPerformance(options.libsDir, options.brokers, toolTopic, messages, messageSize);
    return { messages, messageSize, referencePerSecond, toolPerSecond, ratio: referencePerSecond / toolPerSecond };
  } finally {
    await admin.deleteTopics({ topics: [referenceTopic, toolTopic], timeout: 10_000 }).catch(() => undefined);
    await admin.disconnect();
  }
}

async function timeReferenceProducer(kafka: Kafka, topic: string, count: number, size: number): Promise<number> {
  const events = ordersOfSize(count, size);
  const OrderEventPublisher = await loadPublisher();
  const publisher = new OrderEventPublisher(kafka, topic);
  await publisher.connect();
  try {
    const started = process.hrtime.bigint();
    await publisher.publish(events, { correlationId: `bench-${randomUUID()}` });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return count / seconds;
  } finally {
    await publisher.disconnect();
  }
}

/** `count` order.placed events whose JSON body (the message value) is `size` bytes long. */
function ordersOfSize(count: number, size: number): OrderPlaced[] {
  const placedAt = new Date().toISOString();
  return Array.from({ length: count }, (_, i) => {
    const event: OrderPlaced = {
      type: 'order.placed',
      eventId: randomUUID(),
      orderId: `order-${String(i).padStart(8, '0')}`,
      customerId: 'customer-',
      lines: [{ sku: 'SKU-MUG', quantity: 1 }],
      placedAt,
    };
    const { type: _type, ...body } = event;
    const missing = size - Buffer.byteLength(JSON.stringify(body));
    if (missing < 0) {
      throw new RangeError(`messageSize ${size} is smaller than an order.placed event (${size - missing} bytes): use at least that`);
    }
    event.customerId += 'x'.repeat(missing);
    return event;
  });
}

async function runProducerPerformance(libsDir: string, brokers: string, topic: string, count: number, size: number): Promise<number> {
  const args = [
    '-cp', join(libsDir, '*'),
    'org.apache.kafka.tools.ProducerPerformance',
    '--topic', topic,
    '--num-records', String(count),
    '--record-size', String(size),
    '--throughput', '-1',
    '--producer-props', `bootstrap.servers=${brokers}`, 'acks=all',
  ];
  const { stdout } = await run('java', args, { maxBuffer: 16 * 1024 * 1024, timeout: 300_000 });
  // The last summary line: "50000 records sent, 17593.24 records/sec (17.18 MB/sec), ..."
  const summaries = [...stdout.matchAll(/^(\d+) records sent, ([\d.]+) records\/sec/gm)];
  const last = summaries.at(-1);
  if (!last || Number(last[1]) !== count) {
    throw new Error(`ProducerPerformance did not report sending ${count} records. Its output:\n${stdout}`);
  }
  return Number(last[2]);
}
