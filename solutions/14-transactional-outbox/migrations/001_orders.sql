-- The order service's own table. `version` is the sequence number of the order's latest event:
-- every change to an order increments it in the same UPDATE that changes the order, so the row
-- lock taken by that UPDATE makes the changes of one order commit one after the other.
CREATE TABLE IF NOT EXISTS orders (
  id          uuid PRIMARY KEY,
  customer_id text NOT NULL,
  items       jsonb NOT NULL,
  total_cents integer NOT NULL CHECK (total_cents > 0),
  status      text NOT NULL DEFAULT 'placed' CHECK (status IN ('placed', 'cancelled')),
  version     integer NOT NULL DEFAULT 1 CHECK (version > 0),
  placed_at   timestamptz NOT NULL DEFAULT now()
);
