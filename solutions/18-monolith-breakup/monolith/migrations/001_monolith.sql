-- The monolith's one database: every module's tables side by side, joined and written together
-- in one transaction. This is what the breakup takes apart.
CREATE TABLE IF NOT EXISTS users (
  id uuid PRIMARY KEY,
  email text NOT NULL UNIQUE,
  name text NOT NULL,
  password_hash text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS orders (
  id uuid PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES users (id),
  status text NOT NULL CHECK (status IN ('placed', 'confirmed')),
  lines jsonb NOT NULL,
  total_cents integer NOT NULL CHECK (total_cents >= 0),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS payments (
  id uuid PRIMARY KEY,
  order_id uuid NOT NULL UNIQUE REFERENCES orders (id),
  user_id uuid NOT NULL REFERENCES users (id),
  amount_cents integer NOT NULL,
  status text NOT NULL CHECK (status IN ('captured')),
  captured_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS emails (
  id bigserial PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('welcome', 'order-confirmed')),
  user_id uuid NOT NULL REFERENCES users (id),
  to_address text NOT NULL,
  subject text NOT NULL,
  body text NOT NULL,
  sent_at timestamptz NOT NULL DEFAULT now()
);
