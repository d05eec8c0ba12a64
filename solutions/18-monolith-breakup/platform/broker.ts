import { connect, type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import { parseEnvelope, type AnyEnvelope, type EventType } from './events.ts';
import { log, logError } from './log.ts';

/** RabbitMQ for one service: a confirm channel for the outbox relay and a channel for its consumer. */
export interface Broker {
  connection: ChannelModel;
  publishing: ConfirmChannel;
  consuming: Channel;
  close(): Promise<void>;
}

export async function connectBroker(service: string, url: string, exchange: string): Promise<Broker> {
  const connection = await connect(url, { clientProperties: { connection_name: service } });
  let closing = false;
  connection.on('error', (error: Error) => logError(service, undefined, 'broker connection', error));
  connection.on('close', () => {
    if (closing) return;
    // Without the broker this process can neither relay nor consume: let the platform restart it.
    console.error(`[${service}] the broker connection closed; exiting so that the platform restarts this instance`);
    process.exit(1);
  });
  const publishing = await connection.createConfirmChannel();
  const consuming = await connection.createChannel();
  await publishing.assertExchange(exchange, 'topic', { durable: true });
  return {
    connection,
    publishing,
    consuming,
    async close() {
      closing = true;
      await connection.close().catch(() => {});
    },
  };
}

export interface Subscription {
  /** The service's own durable queue, e.g. "shop.payments". */
  queue: string;
  exchange: string;
  events: readonly EventType[];
  handle(event: AnyEnvelope): Promise<void>;
}

/** How long a failed event waits before it is delivered again (a retry, not a hot loop). */
const RETRY_DELAY_MS = 200;

/**
 * Consumes the subscription's queue: an event is acknowledged only after its handler succeeded,
 * so a crash redelivers it (handlers are idempotent). A handler that throws gets the event again
 * after a short delay; a message that is not an event at all is dropped with a log line.
 */
export async function subscribe(service: string, channel: Channel, subscription: Subscription): Promise<string> {
  const { queue, exchange, events } = subscription;
  await channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'classic' } });
  for (const type of events) await channel.bindQueue(queue, exchange, type);
  await channel.prefetch(10);
  const { consumerTag } = await channel.consume(queue, (message) => {
    if (message) void deliver(service, channel, subscription, message);
  });
  return consumerTag;
}

async function deliver(service: string, channel: Channel, subscription: Subscription, message: ConsumeMessage): Promise<void> {
  const event = parseEnvelope(message.content);
  if (!event) {
    log(service, undefined, `dropped a message on ${subscription.queue} that is not an event (${message.content.length} bytes)`);
    channel.nack(message, false, false);
    return;
  }
  try {
    await subscription.handle(event);
    log(service, event.requestId, `handled ${event.type} ${event.eventId}`);
    channel.ack(message);
  } catch (error) {
    logError(service, event.requestId, `handling ${event.type} ${event.eventId}`, error);
    setTimeout(() => {
      try {
        channel.nack(message, false, true);
      } catch {
        // The channel closed meanwhile: the broker redelivers the message anyway.
      }
    }, RETRY_DELAY_MS);
  }
}
