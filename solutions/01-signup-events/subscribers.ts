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
  return bus.on('user.signed-up', (event) => mailer.sendWelcomeEmail(event.email, event.name));
}

export function subscribeAuthKey(bus: SignupBus, keys: AuthKeyStore): Unsubscribe {
  return bus.on('user.signed-up', async (event) => {
    await keys.issueKey(event.userId);
  });
}

export function subscribeAudit(bus: SignupBus, audit: AuditLog): Unsubscribe {
  return bus.on('user.signed-up', (event) =>
    audit.record({ action: 'user.signed-up', userId: event.userId, at: event.signedUpAt }),
  );
}
