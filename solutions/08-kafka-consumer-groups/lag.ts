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
  const [ends, [committedOffsets]] = await Promise.all([
    admin.fetchTopicOffsets(topic),
    admin.fetchOffsets({ groupId, topics: [topic] }),
  ]);
  // -1 means the group never committed on that partition.
  const committedBy = new Map((committedOffsets?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));

  return ends
    .map(({ partition, low, high }) => {
      const earliest = Number(low);
      const latest = Number(high);
      const stored = committedBy.get(partition) ?? -1;
      const committed = stored >= 0 ? stored : null;
      // Without a commit the group starts at the earliest retained message (fromBeginning), and a
      // commit older than what retention kept also restarts there.
      const resumeAt = committed === null ? earliest : Math.max(committed, earliest);
      return { partition, committed, earliest, latest, lag: Math.max(0, latest - resumeAt) };
    })
    .sort((a, b) => a.partition - b.partition);
}
