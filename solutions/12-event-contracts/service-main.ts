import { connect } from 'amqplib';
import { SERVICE_NAMES, START, type ServiceName } from './services.ts';

// One instance of one of the shop's services, as its own process:
//   SERVICE=billing npx tsx lessons/12-event-contracts/service-main.ts
//   SERVICE=payments INSTANCE=payments-a npx tsx lessons/12-event-contracts/service-main.ts
//   SERVICE=notifications npx tsx lessons/12-event-contracts/service-main.ts
// then place an order with main.ts. CAPTURE_MS sets how long a payment capture takes.

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const namespace = process.env.NAMESPACE ?? 'shop';
const service = process.env.SERVICE ?? '';
const captureMs = Number(process.env.CAPTURE_MS ?? 200);

if (!(SERVICE_NAMES as readonly string[]).includes(service)) {
  console.error(`SERVICE must be one of ${SERVICE_NAMES.join(', ')} (got "${service}")`);
  process.exit(2);
}
if (!Number.isFinite(captureMs) || captureMs < 0) {
  console.error(`CAPTURE_MS must be a number of milliseconds (got "${process.env.CAPTURE_MS}")`);
  process.exit(2);
}
const instance = process.env.INSTANCE ?? `${service}-${process.pid}`;

const connection = await connect(url).catch((error: unknown) => {
  console.error(`[${instance}] cannot connect to RabbitMQ (AMQP_URL): ${error instanceof Error ? error.message : String(error)}`);
  return process.exit(1);
});
let stopping = false;
connection.on('error', (error: Error) => console.error(`[${instance}] connection error: ${error.message}`));
connection.on('close', () => {
  if (stopping) return;
  // Exit and let the supervisor restart us: unacknowledged messages are already back in their queue.
  console.error(`[${instance}] lost the connection to RabbitMQ, exiting`);
  process.exit(1);
});
const channel = await connection.createConfirmChannel();
channel.on('error', (error: Error) => console.error(`[${instance}] channel error: ${error.message}`));

const { queue } = await START[service as ServiceName](channel, { namespace }, { instance, captureMs, log: (line) => console.log(line) });
console.log(`[${instance}] ready: consuming ${queue}`);

async function shutdown(): Promise<never> {
  // The channel first: its close travels behind the acks already sent on it. A message still being
  // handled goes back to its queue, unacknowledged, for another instance.
  stopping = true;
  await channel.close().catch(() => {});
  await connection.close().catch(() => {});
  process.exit(0);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void shutdown());
