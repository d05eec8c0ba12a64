import { randomUUID } from 'node:crypto';
import type { EventBus } from './event-bus.ts';
import type { SignupEvents } from './events.ts';

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

export interface SignupOptions {
  /** Resolve only after every subscriber has finished (e.g. in a script that exits afterwards). */
  waitForSubscribers?: boolean;
}

/**
 * Creates users and announces each signup. It knows nothing about emails, keys or audits:
 * whoever cares subscribes to `user.signed-up`.
 */
export class UserService {
  private readonly users = new Map<string, User>();

  constructor(private readonly bus: EventBus<SignupEvents>) {}

  async signup(input: SignupInput, options: SignupOptions = {}): Promise<User> {
    const user: User = {
      id: randomUUID(),
      email: input.email.trim().toLowerCase(),
      name: input.name.trim(),
      createdAt: new Date().toISOString(),
    };
    this.users.set(user.id, user);

    // TODO: announce the signup: one 'user.signed-up' event on this.bus, built from `user`.
    // Return without waiting for subscribers, unless options.waitForSubscribers is true.

    return user;
  }

  findById(id: string): User | undefined {
    return this.users.get(id);
  }
}
