import type { Duplex } from 'node:stream';
import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { withTimeout } from './timing.ts';

export interface BrokerLinkOptions {
  /** The topic exchange events are published to; declared (durable) on every new connection. */
  exchange: string;
  /** Bounds opening the connection (TCP and the AMQP handshake) and each setup step after it. */
  connectTimeoutMs: number;
  log: (line: string) => void;
}

interface OpenLink {
  connection: ChannelModel;
  channel: ConfirmChannel;
  /** True once amqplib has seen the connection close (the broker closed it, the socket failed...). */
  readonly closed: boolean;
}

/**
 * The relay's connection to RabbitMQ: opened on first use, opened again after it was lost, and
 * dropped on the spot, never closed politely, once the relay stops trusting it. Used by one caller
 * at a time (the relay loop).
 */
export class BrokerLink {
  private current: OpenLink | undefined;

  constructor(private readonly url: string, private readonly options: BrokerLinkOptions) {}

  /** A confirm channel on which the exchange exists. Connects first when there is no live connection. */
  async channel(): Promise<ConfirmChannel> {
    if (!this.current || this.current.closed) this.current = await this.open();
    return this.current.channel;
  }

  /**
   * Abandons the connection: every confirm still pending on it fails at once with "channel closed",
   * and the next channel() connects again. For a connection that may be dead without knowing it.
   */
  drop(reason: Error): void {
    const link = this.current;
    this.current = undefined;
    if (link && !link.closed) abort(link.connection, reason);
  }

  /** Closes the connection gracefully (a relay shutting down), or drops it if the broker does not answer. */
  async close(): Promise<void> {
    const link = this.current;
    this.current = undefined;
    if (!link || link.closed) return;
    try {
      await withTimeout(link.connection.close(), this.options.connectTimeoutMs, 'closing the broker connection');
    } catch (error) {
      abort(link.connection, error instanceof Error ? error : new Error(String(error)));
    }
  }

  private async open(): Promise<OpenLink> {
    const { exchange, connectTimeoutMs, log } = this.options;
    // amqplib's `timeout` covers the TCP connect and the AMQP handshake, then amqplib clears it:
    // without it, connecting to a host that does not answer waits for the operating system's
    // TCP timeout (minutes).
    const connection = await connect(this.url, { timeout: connectTimeoutMs });
    let closed = false;
    connection.on('error', (error: Error) => log(`broker connection error: ${error.message}`));
    connection.on('blocked', (reason: string) => log(`the broker blocked publishing: ${reason}`));
    connection.on('close', () => (closed = true));
    try {
      // Any RPC on a connection that went silent waits for a reply that never comes: bound them all.
      const channel = await withTimeout(connection.createConfirmChannel(), connectTimeoutMs, 'opening a confirm channel');
      channel.on('error', (error: Error) => log(`broker channel error: ${error.message}`));
      await withTimeout(channel.assertExchange(exchange, 'topic', { durable: true }), connectTimeoutMs, `declaring the exchange ${exchange}`);
      log(`connected to RabbitMQ at ${new URL(this.url).host}`);
      return {
        connection,
        channel,
        get closed() {
          return closed;
        },
      };
    } catch (error) {
      abort(connection, error instanceof Error ? error : new Error(String(error)));
      throw error;
    }
  }
}

/**
 * amqplib (2.3) has no way to abandon a connection. `close()` sends connection.close and waits for
 * the broker's close-ok, which a broker that vanished never sends. Destroying the socket WITH an
 * error makes amqplib handle it as a socket error: it closes every channel, and each pending
 * confirm callback is called with Error('channel closed'). Destroying it without an error is not
 * enough: amqplib listens for the socket's 'error' and 'end', not 'close', so the connection would
 * look open forever and its pending confirms would never settle.
 */
function abort(connection: ChannelModel, reason: Error): void {
  const socket = (connection.connection as unknown as { stream?: Duplex }).stream;
  socket?.destroy(reason);
}
