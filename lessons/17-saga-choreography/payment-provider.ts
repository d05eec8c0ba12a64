import { setTimeout as sleep } from 'node:timers/promises';

export type ChargeResult = { approved: true } | { approved: false; reason: string };

export interface PaymentProviderOptions {
  /** The most one card may be charged, in cents: above it, the charge is declined. */
  limitCents: number;
  /** How long the card network takes to answer. */
  latencyMs: number;
}

/**
 * Stands in for a card network. It approves any amount up to the limit and declines the rest.
 * Real providers take an idempotency key (here the order id) so that a charge retried after a
 * crash is not taken twice: the provider answers the retry with the first attempt's result.
 */
export class PaymentProvider {
  constructor(private readonly options: PaymentProviderOptions) {}

  async charge(request: { idempotencyKey: string; amountCents: number }): Promise<ChargeResult> {
    console.log(`[payment-provider] charging order ${request.idempotencyKey}: ${request.amountCents} cents`);
    if (this.options.latencyMs > 0) await sleep(this.options.latencyMs);
    if (request.amountCents > this.options.limitCents) {
      return { approved: false, reason: `card declined: ${request.amountCents} cents is over the limit of ${this.options.limitCents}` };
    }
    return { approved: true };
  }

  async refund(request: { idempotencyKey: string; amountCents: number }): Promise<void> {
    console.log(`[payment-provider] refunding order ${request.idempotencyKey}: ${request.amountCents} cents`);
    if (this.options.latencyMs > 0) await sleep(this.options.latencyMs);
  }
}
