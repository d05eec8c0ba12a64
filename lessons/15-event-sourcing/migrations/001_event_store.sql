-- The event store: every change to an account is a row in `events`, and nothing else is stored
-- as the truth. `streams` holds one row per stream (one per account) with its current version:
-- the row that appends lock and compare against, so that two writers cannot both extend it.

CREATE TABLE streams (
  stream_id text PRIMARY KEY,
  -- The number of events in the stream; the version of its last event. 0 is never stored: a
  -- stream without events has no row.
  version bigint NOT NULL CHECK (version > 0)
);

CREATE TABLE events (
  -- Order across all streams, for subscribers. Assigned when the row is inserted, NOT when its
  -- transaction commits: see transaction_id.
  global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  stream_id text NOT NULL REFERENCES streams (stream_id),
  -- 1, 2, 3 … within the stream, without gaps.
  version bigint NOT NULL CHECK (version > 0),
  type text NOT NULL,
  data jsonb NOT NULL,
  metadata jsonb NOT NULL DEFAULT '{}',
  -- The start of the appending transaction (now()), not its commit.
  recorded_at timestamptz NOT NULL DEFAULT now(),
  -- The appending transaction (PostgreSQL 13+). A subscriber reads only events of transactions
  -- older than every transaction still in flight, so a late commit is never skipped.
  transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
  -- A second line of defence: even an append that skipped the version check cannot store two
  -- events at one version of a stream.
  UNIQUE (stream_id, version)
);

-- Subscribers read in (transaction_id, global_position) order.
CREATE INDEX events_by_transaction ON events (transaction_id, global_position);

-- The latest snapshot of each stream: a cache of the state folded from its first `version` events.
-- It may be deleted or rebuilt at any time; the events stay the truth. No foreign key: a snapshot
-- may be taken of a stream that has no events yet (version 0).
CREATE TABLE snapshots (
  stream_id text PRIMARY KEY,
  version bigint NOT NULL CHECK (version >= 0),
  state jsonb NOT NULL,
  taken_at timestamptz NOT NULL DEFAULT now()
);
