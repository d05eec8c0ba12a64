import type { PartitionLag } from './lag.ts';

export interface ScalingPolicy {
  /** How much lag one worker is expected to work off in the time you allow. */
  lagPerWorker: number;
  /** Workers to keep even when there is no lag (default 1). */
  minWorkers?: number;
}

/**
 * How many workers to run for the current lag. Within a group each partition has exactly one
 * owner, so workers beyond the partition count would join, get no partition, and sit idle: the
 * plan never exceeds the number of partitions. More parallelism needs more partitions.
 */
export function planWorkerCount(lags: readonly PartitionLag[], policy: ScalingPolicy): number {
  const partitions = lags.length;
  const totalLag = lags.reduce((sum, { lag }) => sum + lag, 0);
  const wanted = Math.max(policy.minWorkers ?? 1, Math.ceil(totalLag / policy.lagPerWorker));
  return Math.min(wanted, partitions);
}
