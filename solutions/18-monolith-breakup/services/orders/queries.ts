import type pg from 'pg';
import type { OrderLine } from '../../platform/events.ts';

export interface Order {
  id: string;
  userId: string;
  status: 'placed' | 'confirmed';
  lines: OrderLine[];
  totalCents: number;
  createdAt: string;
}

interface OrderRow {
  id: string;
  user_id: string;
  status: Order['status'];
  lines: OrderLine[];
  total_cents: number;
  created_at: Date;
}

const COLUMNS = 'id, user_id, status, lines, total_cents, created_at';

export function toOrder(row: OrderRow): Order {
  return { id: row.id, userId: row.user_id, status: row.status, lines: row.lines, totalCents: row.total_cents, createdAt: row.created_at.toISOString() };
}

export async function findOrder(pool: pg.Pool, id: string): Promise<Order | undefined> {
  const { rows } = await pool.query<OrderRow>(`SELECT ${COLUMNS} FROM orders WHERE id = $1`, [id]);
  return rows[0] ? toOrder(rows[0]) : undefined;
}

export async function ordersOf(pool: pg.Pool, userId: string): Promise<Order[]> {
  const { rows } = await pool.query<OrderRow>(`SELECT ${COLUMNS} FROM orders WHERE user_id = $1 ORDER BY created_at, id`, [userId]);
  return rows.map(toOrder);
}

export const ORDER_COLUMNS = COLUMNS;
export type { OrderRow };
