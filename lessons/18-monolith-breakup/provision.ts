import { resolve } from 'node:path';
import { text, url } from './platform/config.ts';
import { provisionDatabases } from './platform/provision.ts';
import { startOrExit } from './platform/runtime.ts';

// Creates each service's role and schema, as the administrator, and prints each one's DATABASE_URL:
//   DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres \
//     npx tsx lessons/18-monolith-breakup/provision.ts [prefix]
// The prefix (default "shop") names the roles and schemas: shop_users, shop_orders, …

export const SERVICES = ['users', 'orders', 'payments', 'notifications'] as const;

if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) {
  const adminUrl = await startOrExit('provision', async () => url(process.env, 'DATABASE_URL', 'postgres://postgres:postgres@127.0.0.1:5432/postgres', ['postgres:', 'postgresql:']));
  const prefix = process.argv[2] ?? text(process.env, 'DATABASE_PREFIX', 'shop');
  const databases = await startOrExit('provision', () => provisionDatabases(adminUrl, prefix, SERVICES));
  for (const database of Object.values(databases)) {
    console.log(`${database.service.padEnd(13)} role ${database.role}, schema ${database.schema}`);
    console.log(`  DATABASE_URL='${database.url}'`);
  }
}
