import { join } from 'node:path';
import { integer, text, tokenSettings, url } from '../platform/config.ts';
import { createPool, migrate } from '../platform/db.ts';
import { closeServer, listen } from '../platform/http.ts';
import { closeOnShutdown, startOrExit } from '../platform/runtime.ts';
import { createMonolithApp } from './app.ts';

// The monolith: PORT=4000 DATABASE_URL=… npx tsx lessons/18-monolith-breakup/monolith/server.ts

const NAME = 'monolith';
const config = await startOrExit(NAME, async () => ({
  port: integer(process.env, 'PORT', 4000, 0),
  host: text(process.env, 'HOST', '127.0.0.1'),
  databaseUrl: url(process.env, 'DATABASE_URL', 'postgres://postgres:postgres@127.0.0.1:5432/postgres', ['postgres:', 'postgresql:']),
  tokens: tokenSettings(process.env),
}));
const pool = createPool(config.databaseUrl, NAME, 10);
await startOrExit(NAME, () => migrate(pool, join(import.meta.dirname, 'migrations')));
const { server, port } = await startOrExit(NAME, () => listen(createMonolithApp(pool, config.tokens), config.port, config.host));
console.log(`[${NAME}] ready: http://${config.host}:${port}`);

closeOnShutdown(NAME, async () => {
  await closeServer(server);
  await pool.end();
});
