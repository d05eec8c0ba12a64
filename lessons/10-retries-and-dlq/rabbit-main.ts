import { connect } from 'amqplib';
import { buyLabel } from './carrier.ts';
import { flagFromEnv, numberFromEnv, policyFromEnv, runMain } from './config.ts';
import { assertRetryTopology, retryTopology } from './rabbit-topology.ts';
import { startRetryingWorker } from './rabbit-worker.ts';

// A label worker on RabbitMQ, as its own process:
//   WORK_QUEUE=labels RETRY_DELAYS_MS=1000,5000 npx tsx lessons/10-retries-and-dlq/rabbit-main.ts
// then publish requests with demo.ts. Requests for postcode 00000 always fail; CARRIER_FLAKINESS=0.3
// makes the carrier fail 30% of the other calls too (those usually succeed on a retry).
//
// Crash simulation: with CRASH_AFTER_FORWARD=1 the process kills itself (SIGKILL: no cleanup) right
// after the broker has confirmed the first copy it forwards, before it acknowledges the original.
runMain('rabbit-main', async () => {
  const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
  const topology = retryTopology(process.env.WORK_QUEUE ?? 'labels', policyFromEnv('RETRY_DELAYS_MS', [1_000, 5_000]));
  const name = process.env.WORKER_NAME ?? `worker-${process.pid}`;
  const prefetch = numberFromEnv('PREFETCH', 1);
  const flakiness = numberFromEnv('CARRIER_FLAKINESS', 0);
  const crashAfterForward = flagFromEnv('CRASH_AFTER_FORWARD');

  const connection = await connect(url);
  let stopping = false;
  connection.on('error', (error) => console.error(`[${name}] connection error: ${error.message}`));
  connection.on('close', () => {
    if (stopping) return;
    // Exit and let the supervisor restart us; unacknowledged messages are back in the queue.
    console.error(`[${name}] lost the connection to RabbitMQ, exiting`);
    process.exit(1);
  });
  const channel = await connection.createConfirmChannel();
  channel.on('error', (error) => console.error(`[${name}] channel error: ${error.message}`));

  await assertRetryTopology(channel, topology);
  await startRetryingWorker(
    channel,
    topology,
    async (request, { attempt, maxAttempts, redelivered }) => {
      console.log(`[${name}] delivery ${request.requestId} attempt=${attempt}/${maxAttempts} redelivered=${redelivered}`);
      const tracking = await buyLabel(request, { flakiness });
      console.log(`[${name}] labelled ${request.requestId} -> ${tracking}`);
    },
    {
      prefetch,
      name,
      onForwarded: ({ messageId, attempt, to, queue, reason }) => {
        console.log(`[${name}] forwarded ${messageId ?? '(no id)'} attempt=${attempt} to ${to} queue ${queue}: ${reason}`);
        if (crashAfterForward) {
          console.log(`[${name}] simulated crash before acknowledging ${messageId ?? '(no id)'}`);
          process.kill(process.pid, 'SIGKILL');
        }
      },
    },
  );
  console.log(`[${name}] ready: consuming ${topology.queue} (retries after ${topology.policy.delaysMs.join(', ') || 'no'} ms)`);

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      // Closing returns the messages in progress to the queue, unacknowledged. The channel first:
      // its close travels behind the acks already sent on it.
      stopping = true;
      void channel.close().catch(() => {}).then(() => connection.close().catch(() => {})).then(() => process.exit(0));
    });
  }
});
