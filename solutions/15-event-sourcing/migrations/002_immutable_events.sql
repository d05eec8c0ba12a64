-- Stored events are facts: they are never changed and never removed. The database refuses it
-- for every role and every code path, including a migration script or a hand-typed fix in psql,
-- and says why; a mistake is corrected by appending a compensating event.

CREATE FUNCTION refuse_event_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- An error, not RETURN NULL: a BEFORE trigger that returns NULL skips the row silently, and the
  -- code that tried would believe its UPDATE worked.
  RAISE EXCEPTION 'events are immutable: % on table % is refused', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'Correct a mistake by appending a compensating event.';
END;
$$;

CREATE TRIGGER events_are_not_updated_or_deleted
  BEFORE UPDATE OR DELETE ON events
  FOR EACH ROW EXECUTE FUNCTION refuse_event_change();

-- TRUNCATE removes rows without firing row triggers; it has statement triggers of its own.
CREATE TRIGGER events_are_not_truncated
  BEFORE TRUNCATE ON events
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_event_change();
