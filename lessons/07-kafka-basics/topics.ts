import type { Admin } from 'kafkajs';

/**
 * Creates `topic` with exactly `partitions` partitions, or checks that it already has them.
 *
 * Never rely on the broker's auto-creation: it uses the broker default (often one partition),
 * and the partition count decides how many consumers can share the work and which partition
 * each key maps to. Changing it later moves keys to other partitions.
 */
export async function ensureTopic(admin: Admin, topic: string, partitions: number): Promise<void> {
  // TODO: create the topic with admin.createTopics and an explicit numPartitions (wait for its
  // leaders, so it can be used as soon as this resolves). If it already exists (createTopics then
  // resolves false), check that it has the expected number of partitions.
  throw new Error('TODO: ensureTopic');
}
