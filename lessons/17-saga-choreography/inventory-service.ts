import { loadConfig } from './config.ts';
import { INVENTORY_REACTS_TO, reactAsInventory } from './inventory.ts';
import { runService, startSagaService } from './service-runtime.ts';

// The inventory service: reserves stock for placed orders and releases it when the saga fails.
//   npx tsx lessons/17-saga-choreography/inventory-service.ts
// Put stock on the shelf with restock.ts.

const SERVICE = 'inventory-service';

runService(SERVICE, async () => {
  await startSagaService({ name: SERVICE, reactsTo: INVENTORY_REACTS_TO, react: reactAsInventory }, loadConfig(SERVICE));
});
