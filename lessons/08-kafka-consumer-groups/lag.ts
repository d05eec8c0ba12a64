import type { Admin } from 'kafkajs';

export interface PartitionLag {
  partition: number;
  /** The group's committed offset (the next message it will read), or null if it has none. */
  committed: number | null;
  /** The oldest offset still retained. */
  earliest: number;
  /** The high watermark: the offset the next produced message will get. */
  latest: number;
  /** Messages the group still has to process on this partition. */
  lag: number;
}

/**
 * Lag per partition of `topic` for `groupId`, from the broker's view: latest offset minus the
 * position the group would resume from. Offsets are 64-bit; a double holds them exactly up to
 * 2^53, far beyond what a real partition reaches.
 */
export async function consumerLag(admin: Admin, groupId: string, topic: string): Promise<PartitionLag[]> {
  // TODO: admin.fetchTopicOffsets(topic) gives each partition's low (earliest) and high (latest)
  // offsets; admin.fetchOffsets({ groupId, topics: [topic] }) the group's committed offsets, "-1"
  // where it has none. Return one entry per partition, sorted by partition. Where nothing is
  // committed the group starts at the earliest retained message (it subscribes fromBeginning),
  // so that is what the lag counts from.
  throw new Error('TODO: consumerLag');
}
