import type { Redis } from 'ioredis';
import { channelFor } from './channels.ts';
import type { UserEvent } from './events.ts';

export interface PublishOptions {
  channelPrefix?: string;
}

/**
 * Publishes one event, as JSON, on the channel of its type. Resolves with the number of subscribers
 * Redis handed it to: 0 means nobody was listening, and the message is already gone.
 */
export async function publishUserEvent(redis: Redis, event: UserEvent, options: PublishOptions = {}): Promise<number> {
  return redis.publish(channelFor(event.type, options.channelPrefix), JSON.stringify(event));
}
