-- The payments service's own tables. One payment per order: the unique order_id is what makes
-- capturing a payment idempotent, whatever the broker delivers twice.
CREATE TABLE IF NOT EXISTS payments (
  id uuid PRIMARY KEY,
  order_id uuid NOT NULL UNIQUE,
  user_id uuid NOT NULL,
  amount_cents integer NOT NULL CHECK (amount_cents >= 0),
  status text NOT NULL CHECK (status IN ('captured')),
  captured_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS payments_by_user ON payments (user_id, captured_at);
