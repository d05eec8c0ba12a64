import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import pg from 'pg';
import { migrate } from '../platform/db.ts';
import type { AnyEnvelope } from '../platform/events.ts';
import { closeServer } from '../platform/http.ts';

/**
 * What the lesson's own tests stand on: a schema of the test's own on the PostgreSQL server of
 * DATABASE_URL (an administrator's), with the given migrations applied and a pool whose search_path
 * is that schema, and an app served on a free port. Everything is removed by close().
 */

export function adminUrl(): string {
  return process.env.DATABASE_URL ?? 'postgres://postgres:postgres@127.0.0.1:5432/postgres';
}

export function redisUrl(): string {
  return process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
}

export function uniqueSuffix(): string {
  return `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

export interface TestDatabase {
  schema: string;
  pool: pg.Pool;
  close(): Promise<void>;
}

export async function testDatabase(migrations: string): Promise<TestDatabase> {
  const schema = `test_${uniqueSuffix()}`;
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const url = new URL(adminUrl());
  url.searchParams.set('options', `-c search_path=${schema}`);
  const pool = new pg.Pool({ connectionString: url.toString(), max: 5 });
  await migrate(pool, migrations);
  return {
    schema,
    pool,
    async close() {
      await pool.end();
      const cleanup = new pg.Client({ connectionString: adminUrl() });
      await cleanup.connect();
      await cleanup.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await cleanup.end();
    },
  };
}

export interface Served {
  url: string;
  close(): Promise<void>;
}

export async function serve(app: Express): Promise<Served> {
  const server = await new Promise<Server>((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => closeServer(server) };
}

/** A JSON request, as the gateway would send it (with X-User-Id when a user is given). */
export async function call<T = unknown>(url: string, method: string, path: string, body?: unknown, userId?: string): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (userId) headers['x-user-id'] = userId;
  const response = await fetch(`${url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: response.status, body: (await response.json().catch(() => undefined)) as T };
}

/** The events in a service's outbox, oldest first. */
export async function outboxEvents(pool: pg.Pool): Promise<AnyEnvelope[]> {
  const { rows } = await pool.query<{ envelope: AnyEnvelope }>('SELECT envelope FROM outbox ORDER BY position');
  return rows.map((row) => row.envelope);
}
