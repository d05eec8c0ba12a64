import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Pool } from 'pg';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

/**
 * Applies the lesson's `.sql` files in name order, in one transaction. The files are written to be
 * run again, so every instance applies them at start-up; the advisory lock keeps two instances
 * that start together from creating the same table at the same moment.
 */
export async function applyMigrations(pool: Pool): Promise<string[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((file) => file.endsWith('.sql')).sort();
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.migrations'))");
    for (const file of files) await client.query(await readFile(join(MIGRATIONS_DIR, file), 'utf8'));
    await client.query('COMMIT');
    return files;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
