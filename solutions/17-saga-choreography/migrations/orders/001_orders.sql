-- The order service's own tables. Only the order service reads or writes this schema.

CREATE TABLE IF NOT EXISTS orders (
  order_id     uuid        PRIMARY KEY,
  customer_id  text        NOT NULL,
  lines        jsonb       NOT NULL,
  amount_cents integer     NOT NULL CHECK (amount_cents > 0),
  -- PENDING while the saga runs; APPROVED and REJECTED are final.
  status       text        NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'APPROVED', 'REJECTED')),
  -- Why an order was rejected: the failed step's reason, or 'timeout'.
  reason       text,
  placed_at    timestamptz NOT NULL DEFAULT now(),
  -- A saga still PENDING at this time is rejected with reason 'timeout'.
  deadline_at  timestamptz NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  CHECK ((status = 'REJECTED') = (reason IS NOT NULL))
);

-- The deadline sweep reads only pending orders, oldest deadline first.
CREATE INDEX IF NOT EXISTS orders_pending_by_deadline ON orders (deadline_at) WHERE status = 'PENDING';
