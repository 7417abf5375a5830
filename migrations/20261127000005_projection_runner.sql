-- Wakes projection runners after a commit that appended events. A statement-level trigger: one
-- notification per INSERT statement, and PostgreSQL folds identical notifications of one
-- transaction into one. Runners also poll, so a lost notification only delays them.
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('events', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_notify
    AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();

-- What a runner reports besides its position: the error that stopped it.
ALTER TABLE projection_checkpoints
    ADD COLUMN last_error    text,
    ADD COLUMN last_error_at timestamptz;
