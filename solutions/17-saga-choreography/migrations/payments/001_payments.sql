-- The payment service's own tables. Only the payment service reads or writes this schema.

-- One row per order the payment service has heard of, whatever it heard first.
CREATE TABLE IF NOT EXISTS payments (
  order_id     uuid        PRIMARY KEY,
  customer_id  text,
  amount_cents integer     CHECK (amount_cents > 0),
  -- CHARGED    the card was charged
  -- DECLINED   the card network refused the charge
  -- REFUNDED   the card was charged, then paid back (a compensation)
  -- CANCELLED  a refund came before any charge: a tombstone, so a late charge is refused
  status       text        NOT NULL CHECK (status IN ('CHARGED', 'DECLINED', 'REFUNDED', 'CANCELLED')),
  reason       text,
  updated_at   timestamptz NOT NULL DEFAULT now()
);
