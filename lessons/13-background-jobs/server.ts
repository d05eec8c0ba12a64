import { once } from 'node:events';
import { loadServerConfig } from './config.ts';
import { createApp } from './app.ts';
import { closeQueues, createQueues } from './queues.ts';
import { closeOnShutdown, configOrExit } from './runtime.ts';

// The HTTP API: `PORT=3000 npx tsx lessons/13-background-jobs/server.ts`
// It only queues jobs; run worker.ts beside it to have them done.
const config = configOrExit('server', () => loadServerConfig());
const queues = createQueues(config.queues);
const server = createApp(queues).listen(config.port);
server.once('error', (error) => {
  console.error(`[server] cannot listen on port ${config.port}: ${error.message}`);
  process.exit(1);
});
await once(server, 'listening');
console.log(`[server] ready: listening on port ${config.port}, queues under "${config.queues.prefix}:"`);

closeOnShutdown('server', async () => {
  // Stop taking requests, let the ones in flight finish, then close the queues they use.
  await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  await closeQueues(queues);
});
