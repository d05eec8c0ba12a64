-- The write side: an append-only event store. Commands read a stream to decide, then append to it.
-- Only the command side and the relay touch these tables; queries never do.

CREATE TABLE IF NOT EXISTS streams (
  stream_id text PRIMARY KEY,
  -- The number of events in the stream: the version a command must expect to append after.
  version integer NOT NULL CHECK (version > 0)
);

CREATE TABLE IF NOT EXISTS events (
  -- The order of every event in the store. Appends take a table lock, so positions commit in this
  -- order and a reader that has seen position N has seen every committed event before it.
  global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  stream_id text NOT NULL REFERENCES streams (stream_id),
  stream_version integer NOT NULL CHECK (stream_version > 0),
  type text NOT NULL,
  data jsonb NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (stream_id, stream_version)
);

-- How far the relay has published the store to Kafka, per topic.
CREATE TABLE IF NOT EXISTS relay_positions (
  topic text PRIMARY KEY,
  global_position bigint NOT NULL
);
