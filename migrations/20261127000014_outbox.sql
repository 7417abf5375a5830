-- Read model "outbox" (projections/src/read_models/outbox/): the integration outbox that
-- transmitter workers drain into the customers' systems. No serial columns and no foreign keys,
-- so a rebuild can copy every table with CREATE TABLE ... (LIKE ... INCLUDING ALL).
--
-- Three groups of tables:
-- - inputs: the projection's own copies of what its rules read (it reads no other read model);
-- - decisions: what the outbox last decided each configuration's remote system should get;
-- - the queue (outbox_items) and what each remote system holds (outbox_remote_content), which
--   the worker functions also write (claim, complete, fail, requeue).

-- Inputs ---------------------------------------------------------------------------------------

-- Channel configurations. An empty catalogs_to_transmit means every catalog of the customer.
CREATE TABLE outbox_configs (
    config_id            uuid    PRIMARY KEY,
    customer_id          uuid    NOT NULL,
    -- Channel code: SAP, DEGREED2, CSOD, XAPI.
    channel              text    NOT NULL,
    active               boolean NOT NULL,
    catalogs_to_transmit uuid[]  NOT NULL,
    disable_learner_data boolean NOT NULL
);

CREATE INDEX outbox_configs_customer ON outbox_configs (customer_id);

-- Customers: whether they are active, request consent (enabled and not externally managed) and
-- report audit enrollments (both audit flags).
CREATE TABLE outbox_customers (
    customer_id                 uuid    PRIMARY KEY,
    active                      boolean NOT NULL,
    requests_consent            boolean NOT NULL,
    enable_audit_enrollment     boolean NOT NULL,
    enable_audit_data_reporting boolean NOT NULL
);

-- The customers' catalogs and their content filters.
CREATE TABLE outbox_catalogs (
    catalog_id     uuid  PRIMARY KEY,
    customer_id    uuid  NOT NULL,
    content_filter jsonb NOT NULL
);

CREATE INDEX outbox_catalogs_customer ON outbox_catalogs (customer_id);

-- Every content item ever published; a retired one stays with published = false.
CREATE TABLE outbox_content (
    content_type text    NOT NULL,
    content_key  text    NOT NULL,
    metadata     jsonb   NOT NULL,
    filter_view  jsonb   NOT NULL,
    published    boolean NOT NULL,
    PRIMARY KEY (content_type, content_key)
);

-- The published items each catalog's filter admits.
CREATE TABLE outbox_catalog_content (
    catalog_id   uuid NOT NULL,
    content_type text NOT NULL,
    content_key  text NOT NULL,
    PRIMARY KEY (catalog_id, content_type, content_key)
);

CREATE INDEX outbox_catalog_content_item ON outbox_catalog_content (content_type, content_key);

-- Memberships: a learner's rows are sent only while linked and active.
CREATE TABLE outbox_memberships (
    customer_id uuid    NOT NULL,
    learner_id  uuid    NOT NULL,
    linked      boolean NOT NULL,
    active      boolean NOT NULL,
    PRIMARY KEY (customer_id, learner_id)
);

-- Course-level consent (the key a run resolves to).
CREATE TABLE outbox_consents (
    customer_id uuid    NOT NULL,
    learner_id  uuid    NOT NULL,
    course_key  text    NOT NULL,
    granted     boolean NOT NULL,
    PRIMARY KEY (customer_id, learner_id, course_key)
);

-- Enterprise enrollments and their current mode (audit: CourseMode::is_audit).
CREATE TABLE outbox_enrollments (
    customer_id   uuid    NOT NULL,
    learner_id    uuid    NOT NULL,
    course_run_id text    NOT NULL,
    mode          text    NOT NULL,
    audit         boolean NOT NULL,
    PRIMARY KEY (customer_id, learner_id, course_run_id)
);

-- The latest completion decision (CourseCompleted, then CompletionGradeChanged).
CREATE TABLE outbox_completions (
    customer_id     uuid             NOT NULL,
    learner_id      uuid             NOT NULL,
    course_run_id   text             NOT NULL,
    grade           text             NOT NULL,
    percent         double precision,
    completed_at    timestamptz      NOT NULL,
    progress_status text             NOT NULL,
    PRIMARY KEY (customer_id, learner_id, course_run_id)
);

-- Decisions ------------------------------------------------------------------------------------

-- Per configuration x content item: whether the outbox last decided the remote should hold it,
-- and the version of that decision (it grows by one for every new transmission due; item ids
-- derive from it, so they depend on the events only).
CREATE TABLE outbox_content_targets (
    config_id    uuid    NOT NULL,
    content_type text    NOT NULL,
    content_key  text    NOT NULL,
    present      boolean NOT NULL,
    version      integer NOT NULL,
    PRIMARY KEY (config_id, content_type, content_key)
);

CREATE INDEX outbox_content_targets_item
    ON outbox_content_targets (content_type, content_key) WHERE present;

-- Per configuration x learner x course run: the version of the last completion queued.
CREATE TABLE outbox_learner_targets (
    config_id     uuid    NOT NULL,
    learner_id    uuid    NOT NULL,
    course_run_id text    NOT NULL,
    version       integer NOT NULL,
    PRIMARY KEY (config_id, learner_id, course_run_id)
);

-- The queue ------------------------------------------------------------------------------------

CREATE TABLE outbox_items (
    -- UUIDv5 of (config, kind, subject, version): the idempotency key sent to the remote.
    item_id          uuid        PRIMARY KEY,
    config_id        uuid        NOT NULL,
    customer_id      uuid        NOT NULL,
    kind             text        NOT NULL CHECK (kind IN ('content', 'learner')),
    action           text        NOT NULL
                                 CHECK (action IN ('create', 'update', 'delete', 'completion')),
    -- What the row is about within its configuration and kind: 'type:key' for content,
    -- 'learner_id:course_run_id' for learners. One pending or held row per subject.
    subject          text        NOT NULL,
    version          integer     NOT NULL,
    -- Content: whether the remote should hold the item (create/update) or not (delete); the
    -- action is decided again against outbox_remote_content when the row is claimed.
    -- Learner rows: always true.
    present          boolean     NOT NULL,
    content_type     text,
    content_key      text,
    learner_id       uuid,
    course_run_id    text,
    -- The consent key of a learner row (the course the run belongs to).
    course_key       text,
    -- Content: the item's metadata. Learner: the completion (grade, percent, completed_at,
    -- progress_status, course_run_id, course_key, mode).
    payload          jsonb       NOT NULL,
    status           text        NOT NULL
                                 CHECK (status IN ('pending', 'held', 'leased', 'sent', 'dead',
                                                   'cancelled')),
    attempts         integer     NOT NULL,
    next_attempt_at  timestamptz NOT NULL,
    lease_owner      text,
    lease_expires_at timestamptz,
    last_error       text,
    -- Why the projection (or a worker, for a superseded row) cancelled it.
    cancel_reason    text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

-- One pending or held row per configuration x subject: the projection coalesces into it.
CREATE UNIQUE INDEX outbox_items_open
    ON outbox_items (config_id, kind, subject) WHERE status IN ('pending', 'held');
-- A subject's rows (in-flight checks, cancellations).
CREATE INDEX outbox_items_subject ON outbox_items (config_id, kind, subject);
-- Claiming: due pending rows and expired leases, oldest due first.
CREATE INDEX outbox_items_due
    ON outbox_items (next_attempt_at) WHERE status IN ('pending', 'leased');
-- A learner's open rows (consent and membership changes).
CREATE INDEX outbox_items_learner
    ON outbox_items (customer_id, learner_id) WHERE kind = 'learner';
-- Counts per configuration and status.
CREATE INDEX outbox_items_config_status ON outbox_items (config_id, status);

-- What each configuration's remote system holds: content last sent as create or update and not
-- deleted since. Written by `complete`.
CREATE TABLE outbox_remote_content (
    config_id    uuid        NOT NULL,
    content_type text        NOT NULL,
    content_key  text        NOT NULL,
    -- The item that put it there, and when it was confirmed.
    item_id      uuid        NOT NULL,
    sent_at      timestamptz NOT NULL,
    PRIMARY KEY (config_id, content_type, content_key)
);
