import type pg from 'pg';

export interface Payment {
  id: string;
  orderId: string;
  userId: string;
  amountCents: number;
  status: 'captured';
}

export async function paymentsOf(pool: pg.Pool, userId: string): Promise<Payment[]> {
  const { rows } = await pool.query<Payment>(
    `SELECT id, order_id AS "orderId", user_id AS "userId", amount_cents AS "amountCents", status
       FROM payments WHERE user_id = $1 ORDER BY captured_at, id`,
    [userId],
  );
  return rows;
}
