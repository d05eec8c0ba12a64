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
  // TODO:
  //  1. limit the unacknowledged messages the broker sends this worker (options.prefetch);
  //  2. consume topology.queue with manual acknowledgements; for each message (null means the
  //     broker cancelled the consumer: ignore it) call work(...) below, and .catch() its promise
  //     so a failure is logged instead of becoming an unhandled rejection;
  //  3. return { consumerTag }.
  throw new Error('TODO: startRetryingWorker');
}

async function work(
  channel: ConfirmChannel,
  topology: RetryTopology,
  message: ConsumeMessage,
  handle: RequestHandler,
  options: WorkerOptions,
): Promise<void> {
  // TODO:
  //  1. the attempt number: attemptOf(message). Parse the body with parseRequest(message.content).
  //     A malformed body will never parse: dead-letter it at once, with the parse error as reason.
  //  2. run the handler with { attempt, maxAttempts: maxAttempts(topology.policy), redelivered }
  //     and `await` it inside try/catch: a throw and a rejected promise must both land in the
  //     catch. Success: ack the message, done.
  //  3. failure: afterFailure(topology.policy, attempt) says what next.
  //     - retry: send a copy to the retry queue for next.delayMs (retryQueueFor) with the header
  //       RETRY_HEADERS.attempt set to next.attempt;
  //     - dead-letter: send a copy to topology.deadLetterQueue with the headers
  //       DEAD_LETTER_HEADERS.error (the reason: describeError(error)), .attempts (attempt) and
  //       .queue (topology.queue).
  //     Never nack(message, false, true) to retry: the broker puts the message straight back at
  //     the head of the queue, unchanged, and the same attempt fails again at once, forever.
  //  4. sendConfirmed(...) resolves once the broker has confirmed the copy. Only then call
  //     options.onForwarded (catch and log what it throws) and ack the original: a crash before
  //     the ack redelivers the original (a duplicate), a crash after an early ack loses it. If
  //     the copy is refused, nack the original with requeue, so it is tried again.
  throw new Error('TODO: work');
}

/**
 * The attempt number, from this lesson's own header. Never from x-death: RabbitMQ writes that
 * header when it dead-letters a message, and from 4.0 on ignores the x-death a client publishes,
 * so a count kept there restarts at every republish and the retries never end.
 */
function attemptOf(message: ConsumeMessage): number {
  // TODO: read RETRY_HEADERS.attempt from message.properties.headers; absent, or not a whole
  // number of 1 or more, means attempt 1. Never count from the broker's x-death header.
  throw new Error('TODO: attemptOf');
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
