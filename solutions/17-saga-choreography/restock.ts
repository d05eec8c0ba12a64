import { createPool, migrate } from './db.ts';
import { loadConfig } from './config.ts';

// Puts stock on the inventory service's shelf (its own schema, like the service itself):
//   npx tsx lessons/17-saga-choreography/restock.ts SKU-MUG=10 SKU-TEE=3
// Each SKU=N sets the available quantity of that product to N.

const usage = 'usage: restock.ts SKU=QUANTITY [SKU=QUANTITY ...], e.g. restock.ts SKU-MUG=10';
const stock = process.argv.slice(2).map((arg) => {
  const match = /^([^=\s]{1,64})=(\d{1,9})$/.exec(arg);
  if (!match) {
    console.error(`restock: "${arg}" is not SKU=QUANTITY (${usage})`);
    process.exit(2);
  }
  return { sku: match[1]!, available: Number(match[2]) };
});
if (stock.length === 0) {
  console.error(`restock: nothing to do (${usage})`);
  process.exit(2);
}

const pool = createPool(loadConfig('inventory-service').databaseUrl, 'restock');
try {
  const schema = await migrate(pool, 'inventory');
  for (const { sku, available } of stock) {
    await pool.query('INSERT INTO products (sku, available) VALUES ($1, $2) ON CONFLICT (sku) DO UPDATE SET available = EXCLUDED.available', [sku, available]);
    console.log(`${schema}: ${sku} has ${available} available`);
  }
} catch (error) {
  console.error(`restock: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await pool.end();
}
