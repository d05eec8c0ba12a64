import type { ConfirmChannel, ConsumeMessage, MessagePropertyHeaders, Options } from 'amqplib';
import { DEAD_LETTER_HEADERS, RETRY_HEADERS } from './headers.ts';
import { retryQueueFor, type RetryTopology } from './rabbit-topology.ts';
import { describeError, parseRequest, type LabelRequest } from './requests.ts';
import { afterFailure, maxAttempts, type NextStep } from './retry-policy.ts';

export interface DeliveryContext {
  /** 1 on the first delivery, 2 on the first retry, … (from the retry-attempt header). */
  attempt: number;
  /** The policy's total: after a failed delivery number maxAttempts, the message is dead-lettered. */
  maxAttempts: number;
  /** The broker delivered this very message before, to a consumer that did not settle it. */
  redelivered: boolean;
}

/** The work for one request. It fails by throwing or by rejecting; both mean "not done". */
export type RequestHandler = (request: LabelRequest, context: DeliveryContext) => Promise<void>;

/** A failed message whose copy the broker has confirmed, in a retry queue or the dead-letter queue. */
export interface ForwardedMessage {
  messageId: string | undefined;
  /** The delivery that failed. */
  attempt: number;
  to: 'retry' | 'dead-letter';
  queue: string;
  reason: string;
}

export interface WorkerOptions {
  /** The most messages this worker holds unacknowledged at a time. */
  prefetch: number;
  /** Used in log lines. */
  name?: string;
  /**
   * Called after the broker has confirmed a failed message's copy and before the original is
   * acknowledged (for logs and metrics; the checks crash the worker here).
   */
  onForwarded?(forwarded: ForwardedMessage): void | Promise<void>;
}

export interface Worker {
  consumerTag: string;
}

/**
 * Consumes the work queue with bounded, delayed retries. A request that fails is not requeued:
 * a copy goes to the retry queue of the policy's next delay with its attempt number raised by
 * one, or, after the last attempt, to the dead-letter queue with the reason and the attempt count.
 * The original is acknowledged only once the broker has confirmed the copy, so a crash in between
 * redelivers it (a duplicate, never a loss).
 */
export async function startRetryingWorker(
  channel: ConfirmChannel,
  topology: RetryTopology,
  handle: RequestHandler,
  options: WorkerOptions,
): Promise<Worker> {
  const name = options.name ?? 'worker';
  await channel.prefetch(options.prefetch);
  const { consumerTag } = await channel.consume(
    topology.queue,
    (message) => {
      // null: the broker cancelled this consumer (its queue was deleted).
      if (message === null) return;
      work(channel, topology, message, handle, options).catch((error: unknown) =>
        console.error(`[${name}] could not settle message ${message.properties.messageId ?? '(no id)'}:`, error),
      );
    },
    { noAck: false },
  );
  return { consumerTag };
}

async function work(
  channel: ConfirmChannel,
  topology: RetryTopology,
  message: ConsumeMessage,
  handle: RequestHandler,
  options: WorkerOptions,
): Promise<void> {
  const attempt = attemptOf(message);
  const parsed = parseRequest(message.content);
  let reason: string;
  let next: NextStep;
  if (!parsed.ok) {
    // A body that cannot be read will never be readable: no retries.
    reason = `malformed request: ${parsed.reason}`;
    next = { action: 'dead-letter' };
  } else {
    try {
      // `await` turns both a throw and a rejection into the catch below.
      await handle(parsed.request, { attempt, maxAttempts: maxAttempts(topology.policy), redelivered: message.fields.redelivered });
      channel.ack(message);
      return;
    } catch (error) {
      reason = describeError(error);
      next = afterFailure(topology.policy, attempt);
    }
  }

  const forwarded: ForwardedMessage = next.action === 'retry'
    ? { messageId: message.properties.messageId, attempt, to: 'retry', queue: retryQueueFor(topology, next.delayMs), reason }
    : { messageId: message.properties.messageId, attempt, to: 'dead-letter', queue: topology.deadLetterQueue, reason };
  const headers: MessagePropertyHeaders = next.action === 'retry'
    ? { [RETRY_HEADERS.attempt]: next.attempt }
    : { [DEAD_LETTER_HEADERS.error]: reason, [DEAD_LETTER_HEADERS.attempts]: attempt, [DEAD_LETTER_HEADERS.queue]: topology.queue };

  try {
    await sendConfirmed(channel, forwarded.queue, message, headers);
  } catch (error) {
    // The broker did not take the copy (it refused it, or the channel closed): keep the original.
    // Requeued, it is delivered again with the same attempt number; on a closed channel the
    // broker has requeued it already and this nack throws, which the caller logs.
    console.error(`[${options.name ?? 'worker'}] could not forward ${forwarded.messageId ?? 'a message'} to ${forwarded.queue}: ${describeError(error)}`);
    channel.nack(message, false, true);
    return;
  }
  try {
    await options.onForwarded?.(forwarded);
  } catch (error) {
    console.error(`[${options.name ?? 'worker'}] onForwarded failed:`, error);
  }
  // Only now may the broker forget the original: its copy is safe.
  channel.ack(message);
}

/**
 * The attempt number, from this lesson's own header. Never from x-death: RabbitMQ writes that
 * header when it dead-letters a message, and from 4.0 on ignores the x-death a client publishes,
 * so a count kept there restarts at every republish and the retries never end.
 */
function attemptOf(message: ConsumeMessage): number {
  const value = Number(message.properties.headers?.[RETRY_HEADERS.attempt] ?? 1);
  return Number.isInteger(value) && value >= 1 ? value : 1;
}

/** Publishes a copy of `message` straight to `queue` and resolves when the broker confirms it. */
function sendConfirmed(channel: ConfirmChannel, queue: string, message: ConsumeMessage, headers: MessagePropertyHeaders): Promise<void> {
  return new Promise((resolve, reject) => {
    channel.sendToQueue(queue, message.content, copyOf(message, headers), (error: unknown) => (error ? reject(error) : resolve()));
  });
}

/**
 * The original's properties and headers plus `headers`. The broker's own x- headers (x-death,
 * x-first-death-*) are left behind: they describe the last hop and belong to the broker. No
 * expiration: a per-message TTL would fight the retry queue's.
 */
function copyOf(message: ConsumeMessage, headers: MessagePropertyHeaders): Options.Publish {
  const { properties } = message;
  const kept = Object.fromEntries(Object.entries(properties.headers ?? {}).filter(([key]) => !key.startsWith('x-')));
  return {
    persistent: true,
    contentType: properties.contentType,
    contentEncoding: properties.contentEncoding,
    messageId: properties.messageId,
    correlationId: properties.correlationId,
    timestamp: properties.timestamp,
    type: properties.type,
    appId: properties.appId,
    headers: { ...kept, ...headers },
  };
}
