import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { inTransaction, sqlState } from '../../platform/db.ts';
import { newEvent } from '../../platform/events.ts';
import { appendToOutbox } from '../../platform/outbox.ts';
import { hashPassword, verifyPassword } from '../../platform/passwords.ts';
import type { Credentials, SignUp } from '../../platform/validation.ts';

export interface User {
  id: string;
  email: string;
  name: string;
}

/** Creates the user and its UserRegistered event in one transaction; undefined if the email is taken. */
export async function registerUser(pool: pg.Pool, signUp: SignUp, requestId: string | undefined): Promise<User | undefined> {
  const user: User = { id: randomUUID(), email: signUp.email, name: signUp.name };
  const passwordHash = await hashPassword(signUp.password);
  try {
    await inTransaction(pool, async (client) => {
      await client.query('INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, $3, $4)', [user.id, user.email, user.name, passwordHash]);
      await appendToOutbox(client, newEvent('UserRegistered', { userId: user.id, email: user.email, name: user.name }, requestId));
    });
  } catch (error) {
    if (sqlState(error) === '23505') return undefined;
    throw error;
  }
  return user;
}

export async function findUser(pool: pg.Pool, id: string): Promise<User | undefined> {
  const { rows } = await pool.query<User>('SELECT id, email, name FROM users WHERE id = $1', [id]);
  return rows[0];
}

/** The user with these credentials, or undefined (unknown email and wrong password look the same). */
export async function authenticateUser(pool: pg.Pool, credentials: Credentials): Promise<User | undefined> {
  const { rows } = await pool.query<User & { password_hash: string }>('SELECT id, email, name, password_hash FROM users WHERE email = $1', [
    credentials.email,
  ]);
  const row = rows[0];
  if (!row || !(await verifyPassword(credentials.password, row.password_hash))) return undefined;
  return { id: row.id, email: row.email, name: row.name };
}
