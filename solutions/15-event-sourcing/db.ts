import pg from 'pg';

/** The lesson's database: DATABASE_URL, or the local PostgreSQL the course starts. */
export function poolFromEnv(name: string): pg.Pool {
  const connectionString = process.env.DATABASE_URL ?? 'postgres://postgres:postgres@127.0.0.1:5432/postgres';
  const pool = new pg.Pool({ connectionString, max: 5, application_name: name });
  // An idle connection that the server closes emits 'error' on the pool: log it, do not crash.
  pool.on('error', (error) => console.error(`${name}: idle database connection lost: ${error.message}`));
  return pool;
}

/** A failure as one readable line (the message; a PostgreSQL error also has its SQLSTATE). */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? `${error.message} (SQLSTATE ${code})` : error.message;
}
