import type { Admin } from 'kafkajs';

/**
 * Creates `topic` with exactly `partitions` partitions, or checks that it already has them.
 *
 * Never rely on the broker's auto-creation: it uses the broker default (often one partition),
 * and the partition count decides how many consumers can share the work and which partition
 * each key maps to. Changing it later moves keys to other partitions.
 */
export async function ensureTopic(admin: Admin, topic: string, partitions: number): Promise<void> {
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions: partitions }],
    waitForLeaders: true,
  });
  if (created) return;

  // createTopics resolves false when the topic exists: make sure it is the topic we expect.
  const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
  const existing = topics[0]?.partitions.length ?? 0;
  if (existing !== partitions) {
    throw new Error(`topic ${topic} exists with ${existing} partitions, expected ${partitions}`);
  }
}
