import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { UserSignedUp } from './events.ts';
import { publishUserEvent } from './publisher.ts';

export interface SignupInput {
  email: string;
  name: string;
}

export interface User {
  id: string;
  email: string;
  name: string;
  createdAt: string;
}

export interface UserServiceOptions {
  /** Put in front of every channel name (see channels.ts). */
  channelPrefix?: string;
  /**
   * Called when a signup reached no subscriber at all. Redis has already dropped it and will never
   * deliver it later, so this is the last moment anyone can notice (log it, count it, alert on it).
   */
  onUndelivered?: (event: UserSignedUp) => void;
}

/**
 * Creates users and announces each signup on Redis. It knows nothing about emails, keys or audits:
 * those services run in their own processes and subscribe to the channel.
 */
export class UserService {
  private readonly users = new Map<string, User>();
  private readonly channelPrefix: string;
  private readonly onUndelivered: (event: UserSignedUp) => void;

  constructor(
    private readonly redis: Redis,
    options: UserServiceOptions = {},
  ) {
    this.channelPrefix = options.channelPrefix ?? '';
    this.onUndelivered = options.onUndelivered ?? warnUndelivered;
  }

  async signup(input: SignupInput): Promise<User> {
    const user: User = {
      id: randomUUID(),
      email: input.email.trim().toLowerCase(),
      name: input.name.trim(),
      createdAt: new Date().toISOString(),
    };
    this.users.set(user.id, user);

    const event: UserSignedUp = {
      type: 'user.signed-up',
      userId: user.id,
      email: user.email,
      name: user.name,
      signedUpAt: user.createdAt,
    };
    // Waits for Redis to take the message, not for any subscriber to handle it.
    const receivers = await publishUserEvent(this.redis, event, { channelPrefix: this.channelPrefix });
    if (receivers === 0) this.onUndelivered(event);

    return user;
  }

  findById(id: string): User | undefined {
    return this.users.get(id);
  }
}

function warnUndelivered(event: UserSignedUp): void {
  console.warn(
    `[user-service] ${event.type} for user ${event.userId} reached no subscriber. ` +
      'Redis pub/sub keeps nothing: no service will ever receive it.',
  );
}
