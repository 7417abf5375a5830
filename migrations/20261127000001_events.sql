-- The event log: postgres-es's `events` table, with jsonb payloads, plus the columns that give
-- it a global order. postgres-es names its columns in every statement, so the extra columns with
-- defaults are invisible to it.
--
-- global_position: a unique, increasing number per event (allocation order, not commit order).
-- transaction_id:  the writing transaction's id. Readers take only events whose transaction is
--                  older than every transaction still in flight (pg_snapshot_xmin), ordered by
--                  (transaction_id, global_position), so no event is skipped while a slower
--                  transaction is still writing (see store/src/log.rs).
-- recorded_at:     the wall-clock time of the insert (clock_timestamp, not the transaction start).
CREATE TABLE events (
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    sequence        bigint      NOT NULL CHECK (sequence >= 0),
    event_type      text        NOT NULL,
    event_version   text        NOT NULL,
    payload         jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    global_position bigserial   NOT NULL,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence),
    CONSTRAINT events_global_position_key UNIQUE (global_position)
);

-- The global log reader's order and range scans.
CREATE INDEX events_log_order ON events (transaction_id, global_position);

-- Idempotency: a command's key is in the metadata of the events it appended, looked up within
-- the stream the command addresses.
CREATE INDEX events_idempotency_key
    ON events (aggregate_type, aggregate_id, (metadata ->> 'idempotency_key'))
    WHERE metadata ? 'idempotency_key';

-- The slug registry finds the slugs a customer claimed, to release those it no longer uses.
CREATE INDEX events_slug_claims ON events ((payload -> 'SlugClaimed' ->> 'customer_id'))
    WHERE event_type = 'SlugClaimed';

-- Redemption finds a coupon by one of its codes, straight from the log.
CREATE INDEX events_coupon_codes ON events USING gin ((payload -> 'CouponCreated' -> 'codes'))
    WHERE event_type = 'CouponCreated';

-- Events are facts: never edited, never deleted.
CREATE FUNCTION events_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are immutable: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER events_are_immutable
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_immutable();
