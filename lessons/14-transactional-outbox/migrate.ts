import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { databaseUrl } from './config.ts';
import { startOrExit } from './runtime.ts';

const MIGRATIONS_DIR = join(import.meta.dirname, 'migrations');

/**
 * Applies the .sql files in migrations/, in name order, in one transaction. They are idempotent
 * (CREATE ... IF NOT EXISTS), and an advisory lock keeps processes that start at the same moment
 * (the server and a relay) from running them at the same time.
 */
export async function migrate(pool: pg.Pool): Promise<string[]> {
  const files = readdirSync(MIGRATIONS_DIR).filter((name) => name.endsWith('.sql')).sort();
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    // The two-key form: a lock space of its own, apart from the relay's locks on aggregates.
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('migrations'), hashtext('14-transactional-outbox'))`);
    for (const file of files) await client.query(readFileSync(join(MIGRATIONS_DIR, file), 'utf8'));
    await client.query('COMMIT');
    return files;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

// `npx tsx lessons/14-transactional-outbox/migrate.ts` creates the tables (DATABASE_URL).
if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) {
  const pool = new pg.Pool({ connectionString: databaseUrl(), max: 1 });
  const files = await startOrExit('migrate', () => migrate(pool));
  console.log(`applied ${files.join(', ')}`);
  await pool.end();
}
