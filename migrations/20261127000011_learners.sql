-- Read model "learners": the memberships of every customer (edX's EnterpriseCustomerUser rows and
-- PendingEnterpriseCustomerUser invitations), one row per customer x learner, built from the
-- "learner_membership" events. No personal data: queries join the learner directory (`learners`)
-- when they read. No serial columns and no foreign keys, so a rebuild can copy the table whole.
CREATE TABLE learners_memberships (
    customer_id   uuid        NOT NULL,
    learner_id    uuid        NOT NULL,
    -- 'pending' (invited by email, not registered yet), 'linked' or 'unlinked' (soft delete).
    state         text        NOT NULL CHECK (state IN ('pending', 'linked', 'unlinked')),
    -- The learner's currently selected customer; only a linked membership is active.
    active        boolean     NOT NULL,
    -- Whether a later link is allowed (false only after an unlink that forbade it).
    is_relinkable boolean     NOT NULL,
    -- recorded_at of the event that created the row, and of the latest event that changed it.
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (customer_id, learner_id)
);

-- A customer's learners in edX's order (active first, most recently changed first).
CREATE INDEX learners_memberships_customer_order
    ON learners_memberships (customer_id, active DESC, updated_at DESC, learner_id);
-- A learner's memberships.
CREATE INDEX learners_memberships_learner ON learners_memberships (learner_id);
