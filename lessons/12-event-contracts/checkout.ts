import type { ConfirmChannel } from 'amqplib';
import { ORDER_PLACED } from './catalog.ts';
import { createMessage } from './envelope.ts';
import type { CloudEvent, OrderPlacedV3 } from './events.ts';
import { publishEvent, type Topology } from './messaging.ts';

export const CHECKOUT_SOURCE = '/checkout';

/**
 * The checkout announces a placed order: one order-placed event, in the latest version, for every
 * service that cares. It starts a flow: unless the caller passes the correlation id of a request
 * already under way, the event's own id becomes the correlation id of everything it causes.
 */
export async function placeOrder(channel: ConfirmChannel, topology: Topology, order: OrderPlacedV3, options: { correlationId?: string } = {}): Promise<CloudEvent<OrderPlacedV3>> {
  const event = createMessage(ORDER_PLACED, order, { source: CHECKOUT_SOURCE, correlationId: options.correlationId });
  await publishEvent(channel, topology, event);
  return event;
}
