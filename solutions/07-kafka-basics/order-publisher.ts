import { CompressionTypes, Partitioners, type Kafka, type Message, type Producer, type RecordMetadata } from 'kafkajs';
import { encodeOrderEvent } from './codec.ts';
import type { OrderEvent } from './events.ts';

/**
 * Kafka rejects a record batch larger than the broker's message.max.bytes (1 MiB by default), and
 * a batch is built per partition from one send: keep each send comfortably below that.
 */
const MAX_BYTES_PER_SEND = 512 * 1024;

export interface PublishContext {
  /** Ties the events to the request or job that caused them, across every service they reach. */
  correlationId: string;
}

/** The order service's way onto the orders topic. */
export class OrderEventPublisher {
  private readonly producer: Producer;

  constructor(kafka: Kafka, private readonly topic: string) {
    this.producer = kafka.producer({
      // The Java client's partitioner: the same key maps to the same partition in every language.
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
    });
  }

  connect(): Promise<void> {
    return this.producer.connect();
  }

  /**
   * Publishes the events in order, as few requests as possible: one send carries many messages,
   * which Kafka writes as one batch per partition. Resolves once every replica has them.
   */
  async publish(events: readonly OrderEvent[], context: PublishContext): Promise<RecordMetadata[]> {
    const written: RecordMetadata[] = [];
    for (const messages of chunkByBytes(events.map((event) => encodeOrderEvent(event, context.correlationId)))) {
      // One send at a time: a retried send can never overtake a later one, so per-key order holds.
      written.push(...(await this.producer.send({
        topic: this.topic,
        messages,
        acks: -1,
        compression: CompressionTypes.None,
      })));
    }
    return written;
  }

  disconnect(): Promise<void> {
    return this.producer.disconnect();
  }
}

function* chunkByBytes(messages: Message[]): Generator<Message[]> {
  let chunk: Message[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = approximateSize(message);
    if (chunk.length > 0 && bytes + size > MAX_BYTES_PER_SEND) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(message);
    bytes += size;
  }
  if (chunk.length > 0) yield chunk;
}

function approximateSize(message: Message): number {
  let size = 64 + byteLength(message.key) + byteLength(message.value);
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    for (const item of [value].flat()) size += name.length + byteLength(item);
  }
  return size;
}

function byteLength(value: string | Buffer | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}
