-- Messaging tables, the same in every service's schema (each service has its own copies).

-- The idempotent consumer's memory: an event id is inserted in the same transaction as the
-- event's effects, so an event is either handled and recorded, or neither.
CREATE TABLE IF NOT EXISTS processed_events (
  event_id     uuid        PRIMARY KEY,
  event_type   text        NOT NULL,
  order_id     uuid        NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now()
);

-- The transactional outbox: events are written here in the transaction that decided them, and
-- the relay publishes them to RabbitMQ afterwards, so a state change is never without its event.
CREATE TABLE IF NOT EXISTS outbox (
  id           bigserial   PRIMARY KEY,
  event_id     uuid        NOT NULL UNIQUE,
  event_type   text        NOT NULL,
  payload      jsonb       NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz
);

CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
