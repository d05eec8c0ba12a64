/**
 * The headers this lesson's retry machinery writes, on both brokers. None of them starts with
 * "x-": RabbitMQ treats x- headers as its own (it writes x-death, x-first-death-*, x-delivery-count),
 * and from 4.0 on it no longer interprets an x-death header that a client publishes.
 */
export const RETRY_HEADERS = {
  /**
   * Which delivery attempt this is: absent (or 1) on the first, 2 on the first retry, and so on.
   * Written by the consumer that forwards a failed message; the only source of the count.
   */
  attempt: 'retry-attempt',
  /** Kafka: epoch milliseconds before which a record in the retry topic must not be processed. */
  notBefore: 'retry-not-before',
} as const;

export const DEAD_LETTER_HEADERS = {
  /** Why the last attempt failed (the handler's error message, or why the body could not be read). */
  error: 'dead-letter-error',
  /** How many deliveries failed before the message was given up on. */
  attempts: 'dead-letter-attempts',
  /** RabbitMQ: the work queue the message failed in. */
  queue: 'original-queue',
} as const;

/**
 * Kafka: where a record was first produced. Set when it is first forwarded, copied unchanged to
 * every retry and to the dead-letter record, so the dead letter names the source record itself,
 * not the retry record it was last read from.
 */
export const ORIGIN_HEADERS = {
  topic: 'original-topic',
  partition: 'original-partition',
  offset: 'original-offset',
} as const;
