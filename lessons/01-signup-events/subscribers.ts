import type { EventBus, Unsubscribe } from './event-bus.ts';
import type { SignupEvents } from './events.ts';

export interface Mailer {
  sendWelcomeEmail(to: string, name: string): Promise<void>;
}

export interface AuthKeyStore {
  issueKey(userId: string): Promise<string>;
}

export interface AuditLog {
  record(entry: { action: string; userId: string; at: string }): Promise<void>;
}

type SignupBus = EventBus<SignupEvents>;

export function subscribeWelcomeEmail(bus: SignupBus, mailer: Mailer): Unsubscribe {
  // TODO: on every 'user.signed-up', send a welcome email to the new user.
  throw new Error('TODO: subscribeWelcomeEmail');
}

export function subscribeAuthKey(bus: SignupBus, keys: AuthKeyStore): Unsubscribe {
  // TODO: on every 'user.signed-up', issue an auth key for the new user's id.
  throw new Error('TODO: subscribeAuthKey');
}

export function subscribeAudit(bus: SignupBus, audit: AuditLog): Unsubscribe {
  // TODO: on every 'user.signed-up', record { action: 'user.signed-up', userId, at: signedUpAt }.
  throw new Error('TODO: subscribeAudit');
}
