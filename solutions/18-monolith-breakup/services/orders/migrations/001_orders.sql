-- The orders service's own tables. user_id is the users service's id, copied, never a foreign key:
-- the users table is in another service's schema, out of this role's reach.
CREATE TABLE IF NOT EXISTS orders (
  id uuid PRIMARY KEY,
  user_id uuid NOT NULL,
  status text NOT NULL CHECK (status IN ('placed', 'confirmed')),
  lines jsonb NOT NULL,
  total_cents integer NOT NULL CHECK (total_cents >= 0),
  payment_id uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  confirmed_at timestamptz
);

CREATE INDEX IF NOT EXISTS orders_by_user ON orders (user_id, created_at);
