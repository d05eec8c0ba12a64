-- The inventory service's own tables. Only the inventory service reads or writes this schema.

CREATE TABLE IF NOT EXISTS products (
  sku       text    PRIMARY KEY,
  -- On the shelf and not set aside for any order.
  available integer NOT NULL CHECK (available >= 0)
);

-- One row per order the inventory has heard of, whatever it heard first.
CREATE TABLE IF NOT EXISTS reservations (
  order_id   uuid        PRIMARY KEY,
  -- RESERVED   the order's stock is set aside (reservation_lines says how much of what)
  -- REJECTED   there was not enough stock; nothing was set aside
  -- RELEASED   the stock was set aside, then given back (a compensation)
  -- CANCELLED  a release came before any reservation: a tombstone, so a late reservation is refused
  status     text        NOT NULL CHECK (status IN ('RESERVED', 'REJECTED', 'RELEASED', 'CANCELLED')),
  reason     text,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS reservation_lines (
  order_id uuid    NOT NULL REFERENCES reservations (order_id),
  sku      text    NOT NULL REFERENCES products (sku),
  quantity integer NOT NULL CHECK (quantity > 0),
  PRIMARY KEY (order_id, sku)
);
