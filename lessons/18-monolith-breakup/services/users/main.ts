import { join } from 'node:path';
import { tokenSettings } from '../../platform/config.ts';
import { runService } from '../../platform/service-host.ts';
import { createUsersApp } from './app.ts';

// The users service: PORT=4001 DATABASE_URL=… npx tsx lessons/18-monolith-breakup/services/users/main.ts
// (DATABASE_URL: its own role and schema, from `npx tsx lessons/18-monolith-breakup/provision.ts`).

await runService({
  service: 'users',
  migrations: join(import.meta.dirname, 'migrations'),
  createApp: ({ pool, config }) => createUsersApp(pool, tokenSettings(process.env), config.instanceId),
});
