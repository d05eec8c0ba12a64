import type { PartitionLag } from './lag.ts';

export interface ScalingPolicy {
  /** How much lag one worker is expected to work off in the time you allow. */
  lagPerWorker: number;
  /** Workers to keep even when there is no lag (default 1). */
  minWorkers?: number;
}

/** How many workers to run for the current lag of a topic (one entry of `lags` per partition). */
export function planWorkerCount(lags: readonly PartitionLag[], policy: ScalingPolicy): number {
  // TODO: enough workers to cover the total lag at policy.lagPerWorker each, at least
  // policy.minWorkers (default 1). Before you return: what does a worker do in a group that has
  // more members than the topic has partitions?
  throw new Error('TODO: planWorkerCount');
}
