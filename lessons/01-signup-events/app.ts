import { EventBus, type ErrorReporter } from './event-bus.ts';
import type { SignupEvents } from './events.ts';
import type { AuditLog, AuthKeyStore, Mailer } from './subscribers.ts';
import { UserService } from './user-service.ts';

export interface SignupAppDependencies {
  mailer: Mailer;
  keys: AuthKeyStore;
  audit: AuditLog;
  onError?: ErrorReporter;
}

/**
 * The composition root: the one place that knows every part. It creates the bus, registers the
 * subscribers and hands the bus to the service. Adding a subscriber means a line here, not a
 * change to UserService.
 */
export function createSignupApp(deps: SignupAppDependencies) {
  const bus = new EventBus<SignupEvents>({ onError: deps.onError });
  // TODO: register the three subscribers from subscribers.ts on the bus.
  return { bus, users: new UserService(bus) };
}
