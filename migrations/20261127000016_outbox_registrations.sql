-- Read model "outbox": learner rows may also be registrations (xAPI `registered` statements,
-- queued when a learner enrolls, for configurations whose channel sends them).
ALTER TABLE outbox_items DROP CONSTRAINT outbox_items_action_check;
ALTER TABLE outbox_items ADD CONSTRAINT outbox_items_action_check
    CHECK (action IN ('create', 'update', 'delete', 'completion', 'registration'));
