-- Where each projection stands in the global log: the (transaction_id, global_position) of the
-- last event it applied, advanced in the same transaction as the projection's own writes.
CREATE TABLE projection_checkpoints (
    name            text        PRIMARY KEY,
    transaction_id  xid8        NOT NULL DEFAULT '0',
    global_position bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
