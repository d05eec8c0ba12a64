import { randomBytes } from 'node:crypto';

const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
let counter = 0;

/**
 * A name no other test, run or learner shares: use it for every queue, exchange, topic, group,
 * stream, channel and schema, so checks can run side by side on one shared broker.
 */
export function uniqueName(prefix: string): string {
  counter += 1;
  return `${prefix}-${runId}-${counter}`;
}
