-- The payment service's tables. Every statement is safe to run again: the checks and each
-- consumer instance apply this file at start-up.

-- The effect: one row per charge taken from a customer. Nothing but the id is unique here, on
-- purpose: an order may legitimately be charged more than once (a second attempt after a declined
-- card, a split payment), so the database cannot tell a duplicate delivery from a new request.
-- Only processed_events below can.
CREATE TABLE IF NOT EXISTS charges (
  id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- Which consumer took the charge, and for which event.
  subscriber   text        NOT NULL,
  event_id     uuid        NOT NULL,
  order_id     text        NOT NULL,
  customer_id  text        NOT NULL,
  amount_cents integer     NOT NULL CHECK (amount_cents > 0),
  currency     char(3)     NOT NULL,
  charged_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS charges_by_event ON charges (subscriber, event_id);

-- One row per event a subscriber has processed, committed in the same transaction as the effect.
-- The key is the event id the producer assigned, scoped by the subscriber: every consumer that
-- writes to this database keeps its own record of what it has done.
CREATE TABLE IF NOT EXISTS processed_events (
  subscriber   text        NOT NULL,
  event_id     uuid        NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (subscriber, event_id)
);
-- For the retention job that deletes rows older than any redelivery can be.
CREATE INDEX IF NOT EXISTS processed_events_by_age ON processed_events (processed_at);
