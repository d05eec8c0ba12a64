import { Partitioners, type Kafka } from 'kafkajs';
import type pg from 'pg';
import { encodeEvent } from './codec.ts';
import { toNumber } from './db.ts';
import { readAllAfter } from './event-store.ts';

export interface RelayOptions {
  pool: pg.Pool;
  kafka: Kafka;
  topic: string;
  /** How long to wait before looking again when there was nothing new. */
  pollIntervalMs?: number;
  batchSize?: number;
  onError?(error: unknown): void;
}

export interface Relay {
  /** Finishes the batch in flight, then disconnects. */
  stop(): Promise<void>;
}

/**
 * Publishes the event store to a Kafka topic, in global position order, keyed by stream id. It
 * records how far it got only after Kafka has acknowledged a batch, so a crash in between publishes
 * that batch again: delivery is at least once, and a reader sees the same event (same position) at a
 * later offset. Consumers must expect that.
 */
export async function startRelay(options: RelayOptions): Promise<Relay> {
  const { pool, kafka, topic } = options;
  const pollIntervalMs = options.pollIntervalMs ?? 100;
  const batchSize = options.batchSize ?? 500;
  const onError = options.onError ?? ((error: unknown) => console.warn(`[relay] ${error instanceof Error ? error.message : String(error)}; retrying`));

  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
    // One request at a time per broker, so a retried batch cannot overtake the next one.
    maxInFlightRequests: 1,
  });
  await producer.connect();
  await pool.query('INSERT INTO relay_positions (topic, global_position) VALUES ($1, 0) ON CONFLICT (topic) DO NOTHING', [topic]);

  let running = true;
  let wake: () => void = () => {};
  const pause = (ms: number) => new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    wake = () => {
      clearTimeout(timer);
      resolve();
    };
  });

  const publishNext = async (): Promise<number> => {
    const { rows: [row] } = await pool.query<{ global_position: string }>('SELECT global_position FROM relay_positions WHERE topic = $1', [topic]);
    const events = await readAllAfter(pool, toNumber(row?.global_position ?? 0), batchSize);
    if (events.length === 0) return 0;
    await producer.send({ topic, acks: -1, messages: events.map(encodeEvent) });
    // GREATEST: a second relay running by mistake may have got further; never move back.
    await pool.query('UPDATE relay_positions SET global_position = GREATEST(global_position, $2) WHERE topic = $1', [topic, events.at(-1)!.position]);
    return events.length;
  };

  const loop = (async () => {
    while (running) {
      try {
        const published = await publishNext();
        if (published < batchSize) await pause(pollIntervalMs);
      } catch (error) {
        if (!running) break;
        onError(error);
        await pause(Math.max(pollIntervalMs, 500));
      }
    }
  })();

  return {
    async stop() {
      running = false;
      wake();
      await loop;
      await producer.disconnect();
    },
  };
}
