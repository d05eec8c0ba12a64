import { closeOnShutdown, startOrExit } from '../platform/runtime.ts';
import { startGateway } from './app.ts';
import { loadGatewayConfig } from './config.ts';

// The gateway: PORT=8080 MONOLITH_URL=http://127.0.0.1:4000 npx tsx lessons/18-monolith-breakup/gateway/main.ts
// Then switch a path to its service: etcdctl put /shop/routes/orders service

const config = await startOrExit('gateway', async () => loadGatewayConfig());
const gateway = await startOrExit(config.name, () => startGateway(config));
console.log(`[${config.name}] ready: ${gateway.url}`);

closeOnShutdown(config.name, () => gateway.close());
