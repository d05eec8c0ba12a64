import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';

/**
 * A pool for one service. The application_name shows in pg_stat_activity, so a database
 * administrator sees which service holds which connection (and with which role).
 */
export function createPool(databaseUrl: string, service: string, max = 5): pg.Pool {
  const pool = new pg.Pool({ connectionString: databaseUrl, application_name: service, max });
  pool.on('error', (error) => console.error(`[${service}] idle database connection failed: ${error.message}`));
  return pool;
}

/**
 * Applies the .sql files of a migrations directory in name order, in one transaction. They are
 * idempotent (CREATE … IF NOT EXISTS), and an advisory lock keeps instances that start at the
 * same moment from running them at the same time.
 */
export async function migrate(pool: pg.Pool, directory: string): Promise<string[]> {
  const files = readdirSync(directory).filter((name) => name.endsWith('.sql')).sort();
  await inTransaction(pool, async (client) => {
    // Unqualified names land in the first schema of the search_path: the service's own.
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('migrations'), hashtext(current_schema()))`);
    for (const file of files) await client.query(readFileSync(join(directory, file), 'utf8'));
  });
  return files;
}

/** Runs `work` in one transaction on one connection: committed if it returns, rolled back if it throws. */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch((rollbackError: unknown) => {
      // A connection that cannot roll back is not handed to the next user.
      broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    });
    throw error;
  } finally {
    client.release(broken);
  }
}

/** The SQLSTATE of a PostgreSQL error ('23505' unique violation, '42501' insufficient privilege). */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
