import { setTimeout as delay } from 'node:timers/promises';

export interface Mailer {
  sendWelcomeEmail(to: string, name: string): Promise<void>;
}

export class MailRejectedError extends Error {
  override name = 'MailRejectedError';
}

export interface SimulatedMailerOptions {
  /** How long one email takes to send. */
  delayMs: number;
  /** Addresses the provider rejects, every time. */
  failFor: readonly string[];
}

/** Stands in for a mail provider: slow on purpose, and failing for the addresses it is told to. */
export function simulatedMailer({ delayMs, failFor }: SimulatedMailerOptions): Mailer {
  return {
    async sendWelcomeEmail(to) {
      await delay(delayMs);
      if (failFor.includes(to)) throw new MailRejectedError(`the mail provider rejected ${to}`);
    },
  };
}
