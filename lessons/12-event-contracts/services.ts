import { setTimeout as sleep } from 'node:timers/promises';
import { randomUUID } from 'node:crypto';
import type { ConfirmChannel } from 'amqplib';
import { CAPTURE_PAYMENT, ORDER_PLACED, PAYMENT_CAPTURED } from './catalog.ts';
import { startCommandHandler, startSubscriber, type Consumer } from './consumer.ts';
import { followUp } from './envelope.ts';
import type { CloudEvent } from './events.ts';
import { assertCommandQueue, publishEvent, sendCommand, type Topology } from './messaging.ts';

/**
 * The shop's services, as the lesson runs them (service-main.ts starts one per process). Each
 * handler does its work and then sends what follows from it: a command when it needs one other
 * service to act, an event when it announces what it did. Both are follow-ups of the message that
 * caused them.
 */

export type Log = (line: string) => void;

export const SERVICE_NAMES = ['billing', 'payments', 'notifications'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export interface ServiceOptions {
  /** Names this instance in log lines, e.g. `payments-a`. */
  instance: string;
  log: Log;
  /** How long capturing a payment takes (the payment provider's round trip), in ms. */
  captureMs?: number;
}

/** One line per message, with the attributes that tie a flow together. */
export function describeMessage(message: CloudEvent): string {
  return `${message.type} id=${message.id} correlationid=${message.correlationid} causationid=${message.causationid ?? '-'}`;
}

/** Billing: when an order is placed, it asks the payments service to capture the payment: a command. */
export async function startBilling(channel: ConfirmChannel, topology: Topology, options: ServiceOptions): Promise<Consumer> {
  // Declared by the sender too, so a command sent before payments first starts waits for it.
  await assertCommandQueue(channel, topology, CAPTURE_PAYMENT);
  return startSubscriber(channel, topology, 'billing', {
    [ORDER_PLACED]: async (order, { receivedAs }) => {
      const command = followUp(order, CAPTURE_PAYMENT, { orderId: order.data.orderId, total: order.data.total }, '/billing');
      await sendCommand(channel, topology, command);
      options.log(`[${options.instance}] handled ${describeMessage(order)} (received as ${receivedAs}); sent ${describeMessage(command)}`);
    },
  }, { log: options.log });
}

/** Payments: runs each capture-payment command once, then announces the fact: payment-captured. */
export async function startPayments(channel: ConfirmChannel, topology: Topology, options: ServiceOptions): Promise<Consumer> {
  return startCommandHandler(channel, topology, CAPTURE_PAYMENT, async (command, { redelivered }) => {
    options.log(`[${options.instance}] capturing ${describeMessage(command)} redelivered=${redelivered}`);
    await sleep(options.captureMs ?? 0);
    const captured = followUp(command, PAYMENT_CAPTURED, { orderId: command.data.orderId, paymentId: randomUUID(), total: command.data.total }, '/payments');
    await publishEvent(channel, topology, captured);
    options.log(`[${options.instance}] captured order ${command.data.orderId}; published ${describeMessage(captured)}`);
  }, { log: options.log, prefetch: 1 });
}

/** Notifications: an order confirmation when an order is placed, a receipt when it is paid. */
export async function startNotifications(channel: ConfirmChannel, topology: Topology, options: ServiceOptions): Promise<Consumer> {
  return startSubscriber(channel, topology, 'notifications', {
    [ORDER_PLACED]: async (order) => {
      const to = order.data.customer.email ?? `customer ${order.data.customer.id}`;
      options.log(`[${options.instance}] order confirmation for ${order.data.orderId} to ${to}; ${describeMessage(order)}`);
    },
    [PAYMENT_CAPTURED]: async (payment) => {
      const { amountMinor, currency } = payment.data.total;
      options.log(`[${options.instance}] receipt for ${payment.data.orderId}: ${(amountMinor / 100).toFixed(2)} ${currency}; ${describeMessage(payment)}`);
    },
  }, { log: options.log });
}

export const START: Record<ServiceName, (channel: ConfirmChannel, topology: Topology, options: ServiceOptions) => Promise<Consumer>> = {
  billing: startBilling,
  payments: startPayments,
  notifications: startNotifications,
};
