import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * Each service owns its data: a schema of its own in the shared PostgreSQL server, and a role of
 * its own that owns that schema and has no privilege on any other service's. Provisioning runs
 * once per environment, as an administrator, before the services start; each service is then
 * given only its own DATABASE_URL.
 */

export interface ServiceDatabase {
  service: string;
  /** The role the service logs in as (and the owner of its schema). */
  role: string;
  schema: string;
  /** Its DATABASE_URL: its role and password, with its schema first on the search_path. */
  url: string;
}

/** A connection string for `role` on the same server and database as `serverUrl`, in `schema`. */
export function serviceDatabaseUrl(serverUrl: string, role: string, password: string, schema: string): string {
  const url = new URL(serverUrl);
  url.username = role;
  url.password = password;
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.toString();
}

/** Names are used as SQL identifiers: lower-case letters, digits and underscores only. */
export function identifierFor(prefix: string, service: string): string {
  const name = `${prefix}_${service}`.toLowerCase();
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`"${name}" cannot be a role or schema name (letters, digits, _; at most 63)`);
  return name;
}

/**
 * Creates (or updates) a role and a schema for each service, named `<prefix>_<service>`: the role
 * logs in with a new random password, owns its schema, and is given nothing else. Run again, it
 * changes the passwords and keeps the data.
 */
export async function provisionDatabases(adminUrl: string, prefix: string, services: readonly string[]): Promise<Record<string, ServiceDatabase>> {
  throw new Error('TODO: provisionDatabases');
}

/** Removes what provisionDatabases made: each schema with its tables, then each role. */
export async function dropDatabases(adminUrl: string, databases: Iterable<Pick<ServiceDatabase, 'role' | 'schema'>>): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    for (const { role, schema } of databases) {
      await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
      const { rowCount } = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
      if (!rowCount) continue;
      // Whatever the role still owns or was granted in this database goes first, or DROP ROLE refuses.
      await admin.query(`DROP OWNED BY ${pg.escapeIdentifier(role)}`);
      await admin.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`);
    }
  } finally {
    await admin.end();
  }
}
