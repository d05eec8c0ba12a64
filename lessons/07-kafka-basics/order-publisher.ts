import { CompressionTypes, Partitioners, type Kafka, type Producer, type RecordMetadata } from 'kafkajs';
import { encodeOrderEvent } from './codec.ts';
import type { OrderEvent } from './events.ts';

export interface PublishContext {
  /** Ties the events to the request or job that caused them, across every service they reach. */
  correlationId: string;
}

/** The order service's way onto the orders topic. */
export class OrderEventPublisher {
  private producer: Producer | undefined;

  constructor(private readonly kafka: Kafka, private readonly topic: string) {}

  async connect(): Promise<void> {
    // TODO: create a producer with this.kafka.producer(...) and connect it. Pick the partitioner
    // explicitly (Partitioners.DefaultPartitioner is the Java client's: the same key maps to the
    // same partition in every language) and do not let it auto-create topics.
    throw new Error('TODO: OrderEventPublisher.connect');
  }

  /**
   * Publishes the events in order, as few requests as possible: one send carries many messages,
   * which Kafka writes as one batch per partition. Resolves once every replica has them.
   */
  async publish(events: readonly OrderEvent[], context: PublishContext): Promise<RecordMetadata[]> {
    // TODO: encode every event (encodeOrderEvent) and send them with one producer.send to
    // this.topic, waiting for all replicas (acks: -1), uncompressed (CompressionTypes.None).
    // A record batch must stay under the broker's message.max.bytes (1 MiB by default): for large
    // lists, send in chunks, one after the other, so a retried chunk cannot overtake the next.
    throw new Error('TODO: OrderEventPublisher.publish');
  }

  async disconnect(): Promise<void> {
    // TODO: disconnect the producer.
    throw new Error('TODO: OrderEventPublisher.disconnect');
  }
}
