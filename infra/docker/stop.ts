/**
 * How long a graceful container stop may take before Docker kills it. Testcontainers takes
 * milliseconds (it passes whole seconds to Docker, so `{ timeout: 10 }` would be 0 s: SIGTERM and
 * SIGKILL at once, exit 137). RabbitMQ and Kafka need a few seconds to shut down cleanly.
 */
export const GRACEFUL_STOP_MS = 10_000;
