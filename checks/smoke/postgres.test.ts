import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../support/names.ts';
import { serviceUrl } from '../support/services.ts';

/** Smoke check: the PostgreSQL the course uses isolates transactions, commits and rolls back. */
describe('PostgreSQL smoke check', () => {
  const table = uniqueName('smoke_payments').replaceAll('-', '_');
  let writer: pg.Client;
  let reader: pg.Client;

  beforeAll(async () => {
    writer = new pg.Client({ connectionString: serviceUrl('postgres') });
    reader = new pg.Client({ connectionString: serviceUrl('postgres') });
    await writer.connect();
    await reader.connect();
  });

  afterAll(async () => {
    await writer?.query(`drop table if exists "${table}"`).catch(() => {});
    await writer?.end().catch(() => {});
    await reader?.end().catch(() => {});
  });

  const count = async () => Number((await reader.query(`select count(*) as n from "${table}"`)).rows[0].n);

  it('shows a committed transaction to other sessions and never a rolled-back one', async () => {
    const version = (await writer.query('select version() as v')).rows[0].v as string;
    expect(version, 'the server should be PostgreSQL').toMatch(/^PostgreSQL \d+/);
    await writer.query(`create table "${table}" (id text primary key, amount_cents integer not null)`);

    await writer.query('begin');
    await writer.query(`insert into "${table}" values ('p-1', 1299)`);
    expect(await count(), 'another session must not see an uncommitted row').toBe(0);
    await writer.query('commit');
    expect(await count(), 'another session should see the row once committed').toBe(1);

    await writer.query('begin');
    await writer.query(`insert into "${table}" values ('p-2', 500)`);
    await writer.query('rollback');
    expect(await count(), 'a rolled-back row must never appear').toBe(1);
  });
});
