import { connect, type Channel, type ChannelModel, type ConfirmChannel, type GetMessage, type Options } from 'amqplib';
import { within } from './polling.ts';

/**
 * RabbitMQ plumbing for checks: connections and channels that never crash the test process on a
 * broker-side error, and a teardown that deletes every queue and exchange a test declared and
 * closes every connection it opened, whether the test passed or not.
 *
 * Channel errors matter here: amqplib emits 'error' on a channel the broker closes (a 404 from a
 * passive declare, a 406 from a redeclare with other settings), and an 'error' event nobody
 * listens to is thrown by Node. Every channel and connection made through a scope has a listener.
 */
export class RabbitScope {
  private readonly connections = new Set<ChannelModel>();
  private readonly queues = new Set<string>();
  private readonly exchanges = new Set<string>();
  private shared: Promise<ChannelModel> | undefined;

  constructor(private readonly url: () => string) {}

  /** A new connection, as a separate service would open one. Closed after the test. */
  async connect(): Promise<ChannelModel> {
    const connection = await connect(this.url());
    connection.on('error', () => {});
    this.connections.add(connection);
    return connection;
  }

  /** A channel on the given connection, or on a connection shared by the test's own operations. */
  async channel(connection?: ChannelModel): Promise<Channel> {
    const channel = await (connection ?? (await this.sharedConnection())).createChannel();
    channel.on('error', () => {});
    return channel;
  }

  /** A channel in confirm mode: `await channel.waitForConfirms()` returns once the broker has every message. */
  async confirmChannel(connection?: ChannelModel): Promise<ConfirmChannel> {
    const channel = await (connection ?? (await this.sharedConnection())).createConfirmChannel();
    channel.on('error', () => {});
    return channel;
  }

  /** Registers a queue name for deletion after the test and returns it. */
  queue(name: string): string {
    this.queues.add(name);
    return name;
  }

  /** Registers an exchange name for deletion after the test and returns it. */
  exchange(name: string): string {
    this.exchanges.add(name);
    return name;
  }

  /** Whether the queue exists now (a passive declare on a throwaway channel). */
  async queueExists(queue: string): Promise<boolean> {
    return (await this.readyMessages(queue)) !== undefined;
  }

  /** Messages ready for delivery in the queue, or undefined when the queue does not exist. */
  async readyMessages(queue: string): Promise<number | undefined> {
    const channel = await this.channel();
    try {
      const { messageCount } = await channel.checkQueue(queue);
      return messageCount;
    } catch (error) {
      if (isAmqpError(error, 404)) return undefined;
      throw error;
    } finally {
      await closeQuietly(channel);
    }
  }

  /**
   * Redeclares an exchange with the settings it should have. Resolves undefined when they match,
   * or with the broker's refusal (e.g. "inequivalent arg 'type'") when it exists with others.
   */
  async exchangeMismatch(exchange: string, type: string, options: { durable: boolean }): Promise<string | undefined> {
    const channel = await this.channel();
    try {
      await channel.assertExchange(exchange, type, options);
      return undefined;
    } catch (error) {
      return brokerReason(error);
    } finally {
      await closeQuietly(channel);
    }
  }

  /**
   * Redeclares an existing queue with the settings it should have: undefined when they match, else
   * the broker's refusal ("inequivalent arg 'durable' …"), or why it could not be asked. Passive
   * first, since redeclaring a missing queue would create it.
   */
  async queueMismatch(queue: string, options: Options.AssertQueue): Promise<string | undefined> {
    if (!(await this.queueExists(queue))) return `there is no queue "${queue}"`;
    const channel = await this.channel();
    try {
      await channel.assertQueue(queue, options);
      return undefined;
    } catch (error) {
      return brokerReason(error);
    } finally {
      await closeQuietly(channel);
    }
  }

  /**
   * Takes every message that is ready in the queue now (basic.get until empty), acknowledging
   * them. After `waitForConfirms` on the publishing channel, that is everything routed there.
   */
  async drain(queue: string): Promise<GetMessage[]> {
    const channel = await this.channel();
    const messages: GetMessage[] = [];
    try {
      for (;;) {
        const message = await channel.get(queue, { noAck: true });
        if (message === false) return messages;
        messages.push(message);
      }
    } finally {
      await closeQuietly(channel);
    }
  }

  /** What the teardown is doing now, for the message when it does not finish. */
  cleanupStep = 'not started';

  /** Closes the test's connections and deletes its queues and exchanges. Safe to call twice. */
  async cleanup(): Promise<void> {
    const connections = [...this.connections];
    this.connections.clear();
    const shared = this.shared;
    this.shared = undefined;
    this.cleanupStep = `closing the test's ${connections.length} connections`;
    await Promise.all(connections.map(closeOrDrop));

    const queues = [...this.queues];
    const exchanges = [...this.exchanges];
    this.queues.clear();
    this.exchanges.clear();
    this.cleanupStep = 'waiting for the test\'s shared connection';
    let admin = shared ? await shared.catch(() => undefined) : undefined;
    try {
      if (queues.length > 0 || exchanges.length > 0) {
        if (!admin) {
          this.cleanupStep = 'connecting to delete the test\'s queues and exchanges';
          admin = await connect(this.url());
          admin.on('error', () => {});
        }
        for (const name of queues) {
          this.cleanupStep = `deleting the queue "${name}"`;
          await deleteOnFreshChannel(admin, (ch) => ch.deleteQueue(name));
        }
        for (const name of exchanges) {
          this.cleanupStep = `deleting the exchange "${name}"`;
          await deleteOnFreshChannel(admin, (ch) => ch.deleteExchange(name));
        }
      }
    } catch {
      // The broker is gone (a dedicated broker already stopped): nothing left to delete.
    } finally {
      this.cleanupStep = 'closing the test\'s own connection';
      if (admin) await closeOrDrop(admin);
      this.cleanupStep = 'done';
    }
  }

  private sharedConnection(): Promise<ChannelModel> {
    if (this.shared) return this.shared;
    const shared = connect(this.url()).then((connection) => {
      connection.on('error', () => {});
      // A broker restart closes it: the next operation opens a new one.
      connection.on('close', () => {
        if (this.shared === shared) this.shared = undefined;
      });
      return connection;
    }, (error: unknown) => {
      // A failed connect is not kept: the next operation tries again.
      if (this.shared === shared) this.shared = undefined;
      throw error;
    });
    this.shared = shared;
    return shared;
  }
}

/**
 * Closes a consumer's channel the way a service shutting down would, once the handlers that have
 * run have settled. The close travels behind the channel's acks, so only what is really still
 * unacknowledged goes back to the queue. (Closing the connection instead can overtake acks still
 * in the client's buffers, and requeue messages that were handled.)
 */
export async function closeConsumerChannel(channel: Channel): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  try {
    await channel.close();
  } catch {
    // Already closed.
  }
}

/** Arguments every queue a check declares itself carries, so it behaves alike on 3.x and 4.x. */
export const CLASSIC_QUEUE = { 'x-queue-type': 'classic' } as const;

/**
 * The broker's reason in a channel error, e.g. "inequivalent arg 'durable' for queue …" out of
 * amqplib's "… 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - inequivalent arg …"".
 */
export function brokerReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return /(?:PRECONDITION_FAILED|RESOURCE_LOCKED|NOT_FOUND) - ([^"]+)/.exec(message)?.[1] ?? message;
}

export function isAmqpError(error: unknown, code: number): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;
}

export function messageIds(messages: readonly GetMessage[]): string[] {
  return messages.map((message) => String(message.properties.messageId));
}

async function deleteOnFreshChannel(connection: ChannelModel, remove: (channel: Channel) => Promise<unknown>): Promise<void> {
  const channel = await connection.createChannel();
  channel.on('error', () => {});
  try {
    await remove(channel);
  } catch {
    // Already gone, or never created: either way there is nothing to delete.
  } finally {
    await closeQuietly(channel);
  }
}

/**
 * amqplib's close() waits for the broker's close-ok with no limit of its own. A connection whose
 * close-ok does not come within a few seconds has its socket dropped: the broker then cleans up
 * as for any client that went away.
 */
const CLOSE_MS = 5_000;

async function closeOrDrop(connection: ChannelModel): Promise<void> {
  // closeQuietly never rejects: only the limit can.
  await within(CLOSE_MS, closeQuietly(connection), 'no close-ok').catch(() => socketOf(connection)?.destroy());
}

function socketOf(connection: ChannelModel): { destroy(): void } | undefined {
  // Not in amqplib's types: the Connection behind a ChannelModel keeps its socket as `stream`.
  return (connection.connection as unknown as { stream?: { destroy(): void } }).stream;
}

async function closeQuietly(closable: { close(): Promise<void> }): Promise<void> {
  try {
    await closable.close();
  } catch {
    // Already closed, by the test or by the broker.
  }
}
