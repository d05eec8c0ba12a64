import type { ConfirmChannel } from 'amqplib';
import type pg from 'pg';
import { BrokerLink } from './broker.ts';
import type { OutboxEvent } from './events.ts';
import { claimBatch, markSent } from './outbox.ts';
import { PublishRefusedError, publishConfirmed } from './publisher.ts';
import { Backoff, pause, type BackoffOptions } from './timing.ts';

export interface BatchOptions {
  exchange: string;
  /** The most aggregates one round claims. */
  aggregatesPerBatch: number;
  /** The most events one round publishes per aggregate. */
  eventsPerAggregate: number;
  /** How long the relay waits for the broker's confirm of a publish before giving up on the connection. */
  publishTimeoutMs: number;
}

export interface BatchOutcome {
  /** Events the broker confirmed and that are now marked sent. */
  published: number;
  /** Events the broker refused (basic.nack): still pending, with the events after them. */
  refused: number;
}

/**
 * One round of the relay, in one database transaction:
 *
 * 1. claim pending events (claimBatch): the oldest unsent events of aggregates no other relay holds;
 * 2. publish them in waves, each wave the next event of every claimed aggregate, so an aggregate
 *    never has more than one event waiting for its confirm: its events reach the broker in
 *    sequence order even when one of them is refused;
 * 3. mark the confirmed events sent, and commit.
 *
 * An aggregate whose event the broker refuses stops for this round, its later events waiting behind
 * it. Any other failure (a timeout, a closed channel) ends the round: the events confirmed until then
 * are still marked sent and committed, then the error is rethrown for the caller to drop the
 * connection. A crash at any point leaves unconfirmed events pending, to be published again.
 */
export async function relayBatch(pool: pg.Pool, channel: ConfirmChannel, options: BatchOptions): Promise<BatchOutcome> {
  const confirmed: string[] = [];
  let refused = 0;
  let failure: unknown;
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const claimed = await claimBatch(client, { aggregates: options.aggregatesPerBatch, eventsPerAggregate: options.eventsPerAggregate });
    // What is left to publish of each claimed aggregate, oldest first.
    const queues: OutboxEvent[][] = claimed.map((aggregate) => [...aggregate.events]);
    while (failure === undefined) {
      const wave = queues.filter((queue) => queue.length > 0);
      if (wave.length === 0) break;
      const outcomes = await Promise.allSettled(
        wave.map((queue) => publishConfirmed(channel, options.exchange, queue[0]!, options.publishTimeoutMs)),
      );
      outcomes.forEach((outcome, i) => {
        const queue = wave[i]!;
        if (outcome.status === 'fulfilled') {
          confirmed.push(queue.shift()!.eventId);
          return;
        }
        // Nothing more of this aggregate in this round: its next events must not overtake this one.
        queue.length = 0;
        if (outcome.reason instanceof PublishRefusedError) refused += 1;
        else failure ??= outcome.reason;
      });
    }
    await markSent(client, confirmed);
    await client.query('COMMIT');
  } catch (error) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackError) {
      broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    }
    throw error;
  } finally {
    client.release(broken);
  }
  if (failure !== undefined) throw failure;
  return { published: confirmed.length, refused };
}

export interface RelayOptions {
  /** The order service's database, where the outbox is. */
  pool: pg.Pool;
  amqpUrl: string;
  /** The topic exchange events are published to (declared durable by the relay). */
  exchange: string;
  /** For log lines. */
  name?: string;
  aggregatesPerBatch?: number;
  eventsPerAggregate?: number;
  /** How long an idle relay waits before it looks at the outbox again. */
  pollIntervalMs?: number;
  publishTimeoutMs?: number;
  /** Bounds each step of connecting to the broker. */
  connectTimeoutMs?: number;
  /** Delays between failed rounds: a broker that is down, refuses, or does not answer. */
  backoff?: BackoffOptions;
  log?: (line: string) => void;
}

export interface Relay {
  /** Finishes the round in progress, closes the broker connection and resolves. */
  stop(): Promise<void>;
}

/**
 * Starts a relay: round after round, it publishes pending outbox events (relayBatch). After a
 * failed round it drops the broker connection, waits (exponential backoff with jitter) and goes
 * on with a new connection; when there is nothing to publish it polls every `pollIntervalMs`. It
 * never gives up: a broker outage only delays events, which wait in the outbox meanwhile. Any
 * number of relays may run against one outbox.
 */
export function startRelay(options: RelayOptions): Relay {
  const name = options.name ?? 'relay';
  const write = options.log ?? console.log;
  const log = (line: string) => write(`[${name}] ${line}`);
  const batch: BatchOptions = {
    exchange: options.exchange,
    aggregatesPerBatch: options.aggregatesPerBatch ?? 50,
    eventsPerAggregate: options.eventsPerAggregate ?? 20,
    publishTimeoutMs: options.publishTimeoutMs ?? 5_000,
  };
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  const link = new BrokerLink(options.amqpUrl, { exchange: options.exchange, connectTimeoutMs: options.connectTimeoutMs ?? 5_000, log });
  const backoff = new Backoff(options.backoff ?? { initialMs: 100, maxMs: 10_000 });
  const stopping = new AbortController();

  const loop = async () => {
    while (!stopping.signal.aborted) {
      let delay: number;
      try {
        const channel = await link.channel();
        const { published, refused } = await relayBatch(options.pool, channel, batch);
        if (published > 0) log(`published ${published} event(s)`);
        if (refused > 0) {
          delay = backoff.next();
          log(`the broker refused ${refused} event(s): they stay pending; next round in ${delay} ms`);
        } else {
          backoff.reset();
          // A full round means there may be more waiting: go on at once.
          delay = published > 0 ? 0 : pollIntervalMs;
        }
      } catch (error) {
        const reason = error instanceof Error ? error : new Error(String(error));
        // Whatever failed, the connection may be the cause, and a new one costs milliseconds.
        link.drop(reason);
        delay = backoff.next();
        log(`round failed: ${reason.message}; retrying in ${delay} ms on a new connection`);
      }
      if (delay > 0) await pause(delay, stopping.signal);
    }
    await link.close();
  };
  const running = loop().catch((error: unknown) => log(`stopped by an unexpected error: ${String(error)}`));

  return {
    async stop() {
      stopping.abort();
      await running;
    },
  };
}
