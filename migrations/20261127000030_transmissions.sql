-- Read model "transmissions" (projections/src/read_models/transmissions.rs): the transmission
-- audit, every attempt a worker recorded (TransmissionAttempted), and the latest state of each
-- outbox item. No serial columns and no foreign keys, so a rebuild can copy the tables.

-- One row per attempt; `position` is the event's global position.
CREATE TABLE transmission_attempts (
    position     bigint      PRIMARY KEY,
    item_id      uuid        NOT NULL,
    config_id    uuid        NOT NULL,
    customer_id  uuid        NOT NULL,
    channel      text        NOT NULL,
    action       text        NOT NULL,
    learner_id   uuid,
    attempt      integer     NOT NULL,
    status       text        NOT NULL,
    http_status  integer,
    -- Scrubbed and short (the transmission aggregate's rules).
    excerpt      text,
    duration_ms  bigint      NOT NULL,
    attempted_at timestamptz NOT NULL
);

CREATE INDEX transmission_attempts_item ON transmission_attempts (item_id, position);
CREATE INDEX transmission_attempts_config ON transmission_attempts (config_id, position);

-- One row per outbox item: how many attempts, the latest outcome, when it was first sent.
CREATE TABLE transmission_items (
    item_id         uuid        PRIMARY KEY,
    config_id       uuid        NOT NULL,
    customer_id     uuid        NOT NULL,
    channel         text        NOT NULL,
    action          text        NOT NULL,
    learner_id      uuid,
    attempts        integer     NOT NULL,
    last_status     text        NOT NULL,
    last_http_status integer,
    last_excerpt    text,
    last_at         timestamptz NOT NULL,
    first_sent_at   timestamptz
);

CREATE INDEX transmission_items_config ON transmission_items (config_id, last_status);
