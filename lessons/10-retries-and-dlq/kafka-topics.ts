import type { Admin } from 'kafkajs';

/** The three topics of one consumer with retries. */
export interface RetryTopics {
  /** Where producers write and the consumer first reads a record. */
  source: string;
  /** Failed records waiting for their next attempt; each carries a not-before time. */
  retry: string;
  /** Records whose last attempt failed, with headers saying what, where and why. */
  deadLetter: string;
}

/** label-requests → "label-requests", "label-requests.retry", "label-requests.dlq". */
export function retryTopics(source: string): RetryTopics {
  return { source, retry: `${source}.retry`, deadLetter: `${source}.dlq` };
}

/**
 * Creates the three topics with `partitions` partitions each, unless they exist (the consumers
 * never create topics as a side effect of subscribing). Resolves true if it created any.
 */
export async function createRetryTopics(admin: Admin, topics: RetryTopics, partitions: number): Promise<boolean> {
  const existing = new Set(await admin.listTopics());
  const missing = [topics.source, topics.retry, topics.deadLetter].filter((topic) => !existing.has(topic));
  if (missing.length === 0) return false;
  // The replication factor is the broker's default.replication.factor: 1 here, 3 on a production cluster.
  return admin.createTopics({ topics: missing.map((topic) => ({ topic, numPartitions: partitions })), waitForLeaders: true });
}
