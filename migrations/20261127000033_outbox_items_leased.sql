-- The queue looks rows up by subject for two reasons: the open row of a subject (the unique
-- index outbox_items_open serves it) and a subject's row in flight (claim's check that a
-- subject has no other leased row, a content decision's check that the remote may hold the
-- item). The index over every row served the second, and cost an index write for every row
-- queued: a configuration going live queues one row per item in its scope. Only leased rows
-- are indexed now, and a row enters this index when it is claimed.
DROP INDEX outbox_items_subject;
CREATE INDEX outbox_items_leased ON outbox_items (config_id, kind, subject)
    WHERE status = 'leased';
