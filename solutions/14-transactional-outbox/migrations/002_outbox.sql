-- Events waiting to be published, written in the same transaction as the change they describe.
--
-- `id` only records the order of the INSERTs. It is NOT the order in which rows become visible:
-- an identity value is taken when a row is inserted and becomes visible when its transaction
-- commits, so a row with a lower id can appear after a row with a higher one. Nothing may rely on
-- "every id below the highest one seen is already visible".
--
-- The order that matters is `sequence`, per aggregate: 1, 2, 3... for each order, without gaps.
CREATE TABLE IF NOT EXISTS outbox (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id       uuid NOT NULL UNIQUE,
  aggregate_type text NOT NULL,
  aggregate_id   text NOT NULL,
  sequence       integer NOT NULL CHECK (sequence > 0),
  event_type     text NOT NULL,
  payload        jsonb NOT NULL,
  occurred_at    timestamptz NOT NULL DEFAULT now(),
  -- NULL while the event is pending; set once the broker has confirmed it.
  sent_at        timestamptz,
  UNIQUE (aggregate_id, sequence)
);

-- What the relay reads: the pending events, per aggregate, in sequence order. Partial, so it stays
-- as small as the backlog however many events have been sent.
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (aggregate_id, sequence) WHERE sent_at IS NULL;
