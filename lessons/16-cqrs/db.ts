import pg from 'pg';

/** Anything that runs a query: a pool, or a client inside a transaction. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/** A pool for an entrypoint: DATABASE_URL (its search_path option picks the schema). */
export function poolFromEnv(env: NodeJS.ProcessEnv = process.env): pg.Pool {
  const connectionString = env.DATABASE_URL?.trim();
  if (!connectionString) throw new Error('DATABASE_URL is not set (e.g. postgres://postgres:postgres@127.0.0.1:5432/postgres)');
  const pool = new pg.Pool({ connectionString, max: 10 });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', (error) => console.warn(`[db] idle connection lost: ${error.message}`));
  return pool;
}

/**
 * Runs `work` in one transaction on one connection: COMMIT if it resolves, ROLLBACK if it throws.
 * Either everything it wrote is there afterwards, or nothing is.
 */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // A connection that cannot even roll back is broken: release(error) closes it instead of pooling it.
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
    throw error;
  } finally {
    client.release(broken);
  }
}

/** A bigint column as a number (pg returns int8 as text, since it can exceed 2^53). */
export function toNumber(value: string | number): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number)) throw new Error(`${value} is not a safe integer`);
  return number;
}
