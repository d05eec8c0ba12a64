import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inTransaction, poolFromEnv } from './db.ts';

// Creates the event store and read model tables in the schema DATABASE_URL points at (run once,
// before starting the services; running it again changes nothing):
//   DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres npx tsx lessons/16-cqrs/migrate.ts
const dir = join(dirname(fileURLToPath(import.meta.url)), 'migrations');
let pool;
try {
  pool = poolFromEnv();
} catch (error) {
  console.error((error as Error).message);
  process.exit(1);
}
try {
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.sql')).sort()) {
    await inTransaction(pool, (client) => client.query(readFileSync(join(dir, file), 'utf8')));
    console.log(`applied ${file}`);
  }
} catch (error) {
  console.error(`migration failed: ${(error as Error).message}`);
  process.exitCode = 1;
} finally {
  await pool.end();
}
