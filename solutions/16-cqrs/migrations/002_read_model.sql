-- The read side: tables shaped for the questions the application asks, built by the projection
-- from the events on Kafka. They can be dropped and rebuilt at any time by replaying the topic.

CREATE TABLE IF NOT EXISTS account_balances (
  account_id text PRIMARY KEY,
  owner text NOT NULL,
  balance_cents bigint NOT NULL,
  -- Deposits and withdrawals applied so far.
  transactions integer NOT NULL,
  -- The stream version and global position of the last event applied to this account: the
  -- position a query answer reflects.
  version integer NOT NULL,
  last_position bigint NOT NULL,
  -- Times come from the events, never from the projection's clock, so a rebuild is identical.
  opened_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);

-- Where each projection is in each partition of the topic it reads. Written in the same
-- transaction as the read model rows, so the two can never disagree.
CREATE TABLE IF NOT EXISTS projection_checkpoints (
  projection text NOT NULL,
  topic text NOT NULL,
  partition integer NOT NULL,
  -- The last Kafka offset handled (applied or skipped); -1 before the first.
  kafka_offset bigint NOT NULL,
  -- The global position of the last event applied from this partition; 0 before the first.
  global_position bigint NOT NULL,
  PRIMARY KEY (projection, topic, partition)
);
