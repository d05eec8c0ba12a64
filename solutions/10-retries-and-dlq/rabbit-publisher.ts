import { once } from 'node:events';
import type { ConfirmChannel } from 'amqplib';
import { encodeRequest, type LabelRequest } from './requests.ts';
import type { RetryTopology } from './rabbit-topology.ts';

/**
 * Publishes label requests to the work exchange, persistent, and resolves once the broker has
 * confirmed every one of them (rejects if it refused any): lesson 05's producer, aimed at an exchange.
 */
export async function publishRequests(channel: ConfirmChannel, topology: RetryTopology, requests: readonly LabelRequest[]): Promise<void> {
  for (const request of requests) {
    const written = channel.publish(topology.exchange, topology.routingKey, encodeRequest(request), {
      persistent: true,
      contentType: 'application/json',
      messageId: request.requestId,
    });
    if (!written) await once(channel, 'drain');
  }
  await channel.waitForConfirms();
}
