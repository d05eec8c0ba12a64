import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { lessonFile } from './lesson.ts';
import { uniqueName } from './names.ts';

/**
 * A PostgreSQL schema of the test's own: created on first use, with a pool whose connections have
 * their `search_path` set to it, and dropped with everything in it after the test. Unqualified
 * table names in learner code and in the check both land in it, so tests never see each other's
 * rows, and many learners can share one database server.
 */
export class PgTestKit {
  readonly schema: string;
  /** A connection string that puts its sessions in the test's schema (for learner code and child processes). */
  readonly url: string;
  private readonly pools = new Set<pg.Pool>();
  private readonly clients = new Set<pg.Client>();
  private mainPool: pg.Pool | undefined;
  private created = false;

  constructor(private readonly serverUrl: string, prefix = 'check') {
    // Unquoted identifiers fold to lower case; the name is letters, digits and underscores only.
    this.schema = uniqueName(prefix).toLowerCase().replace(/[^a-z0-9_]/g, '_');
    this.url = withSearchPath(serverUrl, this.schema);
  }

  /** Environment for a child process: DATABASE_URL pointing into the test's schema. */
  get env(): Record<string, string> {
    return { DATABASE_URL: this.url };
  }

  /** Creates the schema (once). Every other method calls it first. */
  async ready(): Promise<this> {
    if (this.created) return this;
    const admin = new pg.Client({ connectionString: this.serverUrl });
    admin.on('error', () => {});
    await admin.connect();
    try {
      await admin.query(`CREATE SCHEMA IF NOT EXISTS ${this.schema}`);
      this.created = true;
    } finally {
      await admin.end().catch(() => {});
    }
    return this;
  }

  /** The test's own pool (search_path set), for the check's queries and to hand to learner code. */
  async pool(): Promise<pg.Pool> {
    await this.ready();
    this.mainPool ??= this.newPool();
    return this.mainPool;
  }

  /** Another pool, as a second service instance would open one; ended after the test. */
  async newPoolFor(options: pg.PoolConfig = {}): Promise<pg.Pool> {
    await this.ready();
    return this.newPool(options);
  }

  /** A single connection of its own (for a transaction held open across steps); ended after the test. */
  async connect(): Promise<pg.Client> {
    await this.ready();
    const client = new pg.Client({ connectionString: this.url });
    client.on('error', () => {});
    await client.connect();
    this.clients.add(client);
    return client;
  }

  async query<R extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<R[]> {
    const { rows } = await (await this.pool()).query<R>(sql, params);
    return rows;
  }

  /** The number of rows in a table (optionally matching a WHERE clause). */
  async count(table: string, where = 'true', params: unknown[] = []): Promise<number> {
    const [row] = await this.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table} WHERE ${where}`, params);
    return Number(row?.n ?? 0);
  }

  /** A table's rows as objects, in the given order. */
  async rows<R extends pg.QueryResultRow = Record<string, unknown>>(table: string, orderBy = '1'): Promise<R[]> {
    return this.query<R>(`SELECT * FROM ${table} ORDER BY ${orderBy}`);
  }

  /** Whether a table exists in the test's schema. */
  async tableExists(table: string): Promise<boolean> {
    const rows = await this.query('SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2', [this.schema, table]);
    return rows.length > 0;
  }

  /**
   * Applies a lesson's migrations: the `.sql` files in `<lesson>/migrations/` of the code under
   * grading, in name order, each in a transaction. Returns the files applied.
   */
  async migrate(slug: string, folder = 'migrations'): Promise<string[]> {
    const dir = lessonFile(slug, folder);
    if (!existsSync(dir)) throw new Error(`${slug}/${folder}/ is missing: the lesson's tables are created from the .sql files there`);
    const files = readdirSync(dir).filter((name) => name.endsWith('.sql')).sort();
    const client = await (await this.pool()).connect();
    try {
      for (const file of files) {
        const sql = readFileSync(join(dir, file), 'utf8');
        try {
          await client.query('BEGIN');
          await client.query(sql);
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch(() => {});
          throw new Error(`${slug}/${folder}/${file} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
        }
      }
    } finally {
      client.release();
    }
    return files;
  }

  /**
   * Runs `count` workers at the same moment, each on a connection of its own: every worker gets its
   * connection first, then all are released together, so a race between them really happens (a
   * check-then-act without a lock loses it). Resolves with each worker's outcome, in order.
   */
  async race<T>(count: number, work: (client: pg.Client, index: number) => Promise<T>): Promise<Array<PromiseSettledResult<T>>> {
    const clients = await Promise.all(Array.from({ length: count }, () => this.connect()));
    const barrier = new Barrier(count);
    return Promise.allSettled(clients.map(async (client, index) => {
      await barrier.arrive();
      return work(client, index);
    }));
  }

  /** Ends every pool and connection and drops the schema with everything in it. */
  async teardown(): Promise<void> {
    const pools = [...this.pools];
    const clients = [...this.clients];
    this.pools.clear();
    this.clients.clear();
    this.mainPool = undefined;
    // pool.end() waits for every checked-out client: code stuck mid-transaction (a publish that
    // never returns) would hold the teardown forever. Its session is ended from the server below.
    await settledWithin(END_GRACE_MS, [...clients.map((c) => c.end()), ...pools.map((p) => p.end())]);
    if (!this.created) return;
    const admin = new pg.Client({ connectionString: this.serverUrl });
    admin.on('error', () => {});
    try {
      await admin.connect();
      // A session of this test still open could hold locks that DROP SCHEMA would wait for. Sessions
      // opened through `url` carry the schema as their application_name (unless the code names them
      // itself); any other session holding a lock in the schema is found through pg_locks.
      await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE pid <> pg_backend_pid()
            AND (application_name = $1 OR pid IN (
              SELECT l.pid FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
               WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1)))`,
        [this.schema],
      );
      await admin.query(`DROP SCHEMA IF EXISTS ${this.schema} CASCADE`);
    } catch {
      // The server is gone (a private instance already stopped): nothing left to drop.
    } finally {
      await admin.end().catch(() => {});
    }
  }

  private newPool(options: pg.PoolConfig = {}): pg.Pool {
    const pool = new pg.Pool({ max: 10, ...options, connectionString: this.url });
    pool.on('error', () => {});
    this.pools.add(pool);
    return pool;
  }
}

/** How long teardown lets pools and connections end by themselves. */
const END_GRACE_MS = 2_000;

async function settledWithin(ms: number, work: Promise<unknown>[]): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  await Promise.race([Promise.allSettled(work), deadline]);
  clearTimeout(timer);
}

/** A connection string whose sessions start with `search_path` set to the schema, and named after it. */
export function withSearchPath(serverUrl: string, schema: string): string {
  const url = new URL(serverUrl);
  url.searchParams.set('options', `-c search_path=${schema}`);
  url.searchParams.set('application_name', schema);
  return url.toString();
}

/** Releases every caller of arrive() at once, when the last of `parties` has arrived. */
export class Barrier {
  private arrived = 0;
  private release!: () => void;
  private readonly open = new Promise<void>((resolve) => (this.release = resolve));

  constructor(private readonly parties: number) {}

  arrive(): Promise<void> {
    this.arrived += 1;
    if (this.arrived >= this.parties) this.release();
    return this.open;
  }
}

/** The SQLSTATE of a PostgreSQL error (e.g. '23505' unique violation, '40001' serialization failure). */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
