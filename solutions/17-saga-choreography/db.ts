import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

/** The schema a service owns; its tables are created from `migrations/<schema>/*.sql`. */
export type SchemaName = 'orders' | 'inventory' | 'payments';

/** A connection inside an open transaction: everything done with it commits or rolls back together. */
export type Tx = pg.PoolClient;

const MIGRATIONS = join(dirname(fileURLToPath(import.meta.url)), 'migrations');

export function createPool(databaseUrl: string, service: string): pg.Pool {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 5 });
  // An idle connection the server drops (a restart) is replaced on next use; say so, do not crash.
  pool.on('error', (error) => console.error(`[${service}] idle database connection lost: ${error.message}`));
  return pool;
}

/** Runs `work` in one transaction: COMMIT if it resolves, ROLLBACK if it throws (and rethrows). */
export async function inTransaction<T>(pool: pg.Pool, work: (tx: Tx) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/**
 * Creates the service's schema (the first one on its search_path) if it is missing, and applies
 * the migrations of its folder in name order. Every statement is idempotent, so each start-up
 * runs them all again. Returns the schema's name.
 */
export async function migrate(pool: pg.Pool, schema: SchemaName): Promise<string> {
  const client = await pool.connect();
  try {
    const { rows } = await client.query<{ search_path: string }>('SHOW search_path');
    const own = rows[0]!.search_path.split(',')[0]!.trim().replace(/^"(.*)"$/, '$1');
    await client.query('BEGIN');
    // Two instances starting at once would race on CREATE ... IF NOT EXISTS: one migrates at a time.
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`migrations:${own}`]);
    if (own && own !== '$user') await client.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(own)}`);
    const folder = join(MIGRATIONS, schema);
    for (const file of readdirSync(folder).filter((name) => name.endsWith('.sql')).sort()) {
      await client.query(readFileSync(join(folder, file), 'utf8'));
    }
    const current = await client.query<{ schema: string | null }>('SELECT current_schema() AS schema');
    await client.query('COMMIT');
    return current.rows[0]?.schema ?? own;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** The same connection string with search_path set to the schema. */
export function withSchema(databaseUrl: string, schema: string): string {
  const url = new URL(databaseUrl);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.toString();
}
