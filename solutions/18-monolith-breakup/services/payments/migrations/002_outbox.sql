-- The service's transactional outbox (see platform/outbox.ts): events written with the change they
-- announce, published by the relay, marked once the broker confirmed them.
CREATE TABLE IF NOT EXISTS outbox (
  position bigserial PRIMARY KEY,
  event_id uuid NOT NULL UNIQUE,
  type text NOT NULL,
  envelope jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  published_at timestamptz
);

CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (position) WHERE published_at IS NULL;
