import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { inTransaction, sqlState } from '../platform/db.ts';
import type { OrderLine } from '../platform/events.ts';
import { hashPassword, verifyPassword } from '../platform/passwords.ts';
import { orderTotalCents } from '../platform/pricing.ts';
import type { Credentials, SignUp } from '../platform/validation.ts';

/**
 * The monolith's modules, all on one database and one pool. Placing an order charges the payment,
 * confirms the order and writes the email in the same transaction: simple, consistent, and the
 * reason a slow payment provider or a broken mailer takes the whole checkout down with it.
 */

export interface User {
  id: string;
  email: string;
  name: string;
}

export interface Order {
  id: string;
  userId: string;
  status: 'placed' | 'confirmed';
  lines: OrderLine[];
  totalCents: number;
  createdAt: string;
}

export interface Payment {
  id: string;
  orderId: string;
  userId: string;
  amountCents: number;
  status: 'captured';
}

export async function registerUser(pool: pg.Pool, signUp: SignUp): Promise<User | undefined> {
  const user: User = { id: randomUUID(), email: signUp.email, name: signUp.name };
  const passwordHash = await hashPassword(signUp.password);
  try {
    await inTransaction(pool, async (client) => {
      await client.query('INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, $3, $4)', [user.id, user.email, user.name, passwordHash]);
      await sendEmail(client, user, 'welcome', 'Welcome to the shop', `Hello ${user.name}, your account is ready.`);
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

export async function authenticateUser(pool: pg.Pool, credentials: Credentials): Promise<User | undefined> {
  const { rows } = await pool.query<User & { password_hash: string }>('SELECT id, email, name, password_hash FROM users WHERE email = $1', [
    credentials.email,
  ]);
  const row = rows[0];
  if (!row || !(await verifyPassword(credentials.password, row.password_hash))) return undefined;
  return { id: row.id, email: row.email, name: row.name };
}

/** Places, pays and confirms an order, and emails the confirmation: one transaction, one answer. */
export async function placeOrder(pool: pg.Pool, userId: string, lines: OrderLine[]): Promise<Order | undefined> {
  const id = randomUUID();
  const totalCents = orderTotalCents(lines);
  return inTransaction(pool, async (client) => {
    const user = (await client.query<User>('SELECT id, email, name FROM users WHERE id = $1', [userId])).rows[0];
    if (!user) return undefined;
    const { rows } = await client.query<{ created_at: Date }>(
      `INSERT INTO orders (id, user_id, status, lines, total_cents) VALUES ($1, $2, 'confirmed', $3, $4) RETURNING created_at`,
      [id, userId, JSON.stringify(lines), totalCents],
    );
    await client.query(`INSERT INTO payments (id, order_id, user_id, amount_cents, status) VALUES ($1, $2, $3, $4, 'captured')`, [
      randomUUID(),
      id,
      userId,
      totalCents,
    ]);
    await sendEmail(client, user, 'order-confirmed', `Order ${id} confirmed`, `Hello ${user.name}, we received your payment of ${(totalCents / 100).toFixed(2)} EUR.`);
    return { id, userId, status: 'confirmed', lines, totalCents, createdAt: rows[0]!.created_at.toISOString() };
  });
}

export async function findOrder(pool: pg.Pool, id: string): Promise<Order | undefined> {
  return (await selectOrders(pool, 'id = $1', [id]))[0];
}

export function ordersOf(pool: pg.Pool, userId: string): Promise<Order[]> {
  return selectOrders(pool, 'user_id = $1', [userId]);
}

async function selectOrders(pool: pg.Pool, where: string, params: unknown[]): Promise<Order[]> {
  const { rows } = await pool.query<{ id: string; user_id: string; status: Order['status']; lines: OrderLine[]; total_cents: number; created_at: Date }>(
    `SELECT id, user_id, status, lines, total_cents, created_at FROM orders WHERE ${where} ORDER BY created_at, id`,
    params,
  );
  return rows.map((row) => ({
    id: row.id,
    userId: row.user_id,
    status: row.status,
    lines: row.lines,
    totalCents: row.total_cents,
    createdAt: row.created_at.toISOString(),
  }));
}

export async function paymentsOf(pool: pg.Pool, userId: string): Promise<Payment[]> {
  const { rows } = await pool.query<Payment>(
    `SELECT id, order_id AS "orderId", user_id AS "userId", amount_cents AS "amountCents", status
       FROM payments WHERE user_id = $1 ORDER BY captured_at, id`,
    [userId],
  );
  return rows;
}

/** The monolith's mailer writes the email in the caller's transaction: the emails table is its outbox of one. */
async function sendEmail(client: pg.ClientBase, user: User, kind: 'welcome' | 'order-confirmed', subject: string, body: string): Promise<void> {
  await client.query('INSERT INTO emails (kind, user_id, to_address, subject, body) VALUES ($1, $2, $3, $4, $5)', [kind, user.id, user.email, subject, body]);
}
