-- Consent history replays a learner's consent events straight from the log. Every consent
-- event's payload is `{"<event type>": {"learner_id": ..., "customer_id": ..., ...}}`, so one
-- expression finds the learner whatever the event, and the partial index holds consent events
-- only. A customer's or a course's history walks the consent events on the primary key instead
-- (its leading column is the aggregate type).
CREATE INDEX events_consent_learner ON events ((payload -> event_type ->> 'learner_id'))
    WHERE aggregate_type = 'consent';
