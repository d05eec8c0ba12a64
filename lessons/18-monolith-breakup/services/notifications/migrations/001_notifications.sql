-- The notifications service's own tables: its copy of each user's contact details (from
-- UserRegistered: it never reads the users service's tables), and the emails it sent.
CREATE TABLE IF NOT EXISTS contacts (
  user_id uuid PRIMARY KEY,
  email text NOT NULL,
  name text NOT NULL
);

CREATE TABLE IF NOT EXISTS sent_emails (
  id bigserial PRIMARY KEY,
  -- The bull job that sent it: a job retried after the insert does not send twice.
  job_id text NOT NULL UNIQUE,
  kind text NOT NULL CHECK (kind IN ('welcome', 'order-confirmed')),
  user_id uuid NOT NULL,
  to_address text NOT NULL,
  subject text NOT NULL,
  body text NOT NULL,
  sent_at timestamptz NOT NULL DEFAULT now()
);
