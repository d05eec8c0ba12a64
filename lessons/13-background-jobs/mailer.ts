import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Signup } from './requests.ts';

export interface EmailMessage {
  to: string;
  subject: string;
  text: string;
}

/** A mail provider's API: resolves with the provider's id for the message once it has answered. */
export interface Mailer {
  send(message: EmailMessage): Promise<{ messageId: string }>;
}

export class MailRejectedError extends Error {
  override name = 'MailRejectedError';
}

export function welcomeMessage(signup: Signup): EmailMessage {
  return {
    to: signup.email,
    subject: `Welcome, ${signup.name}`,
    text: `Hi ${signup.name}, thanks for signing up. Your account is ready.`,
  };
}

export interface SimulatedProviderOptions {
  /**
   * How long the provider's answer takes to come back after it has accepted a message. A worker
   * that dies in this window has had its email sent without ever hearing so.
   */
  replyMs: number;
  /** Addresses the provider refuses, every time. */
  failFor: readonly string[];
  log?: (line: string) => void;
}

/** Stands in for a mail provider: prints every message it accepts, answers after `replyMs`. */
export function simulatedMailProvider({ replyMs, failFor, log = console.log }: SimulatedProviderOptions): Mailer {
  return {
    async send(message) {
      if (failFor.includes(message.to)) throw new MailRejectedError(`the mail provider refused ${message.to}`);
      const messageId = `msg-${randomUUID()}`;
      log(`[mail provider] accepted "${message.subject}" for ${message.to} as ${messageId}`);
      await delay(replyMs);
      return { messageId };
    },
  };
}
