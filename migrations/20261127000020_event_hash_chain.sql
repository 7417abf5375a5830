-- Tamper evidence: every event carries `hash`, the SHA-256 of the previous event's hash in the
-- same stream and this event's canonical content. The database fills it on insert, so the write
-- path (postgres-es) is unchanged and no writer can choose the value. An edit or a deletion in
-- SQL breaks the chain of its stream from that event on; `replay-tools verify` recomputes it.
--
-- The canonical content is the stream (aggregate type and id), the sequence, the event type and
-- version, the payload and the metadata, as the text of one jsonb array (jsonb's text form is
-- deterministic: keys sorted, whitespace normalised). It leaves out global_position,
-- transaction_id and recorded_at, which belong to the store rather than to the event, so an
-- import into another database recomputes exactly the same hashes.

-- The hash of one event given the hash before it in its stream (NULL for the stream's first).
CREATE FUNCTION events_chain_hash(
    previous       bytea,
    aggregate_type text,
    aggregate_id   text,
    sequence       bigint,
    event_type     text,
    event_version  text,
    payload        jsonb,
    metadata       jsonb
) RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sha256(
        coalesce(previous, ''::bytea)
        || convert_to(
            jsonb_build_array(aggregate_type, aggregate_id, sequence, event_type, event_version,
                              payload, metadata)::text,
            'UTF8'))
$$;

ALTER TABLE events ADD COLUMN hash bytea;

-- Chain the events already stored, stream by stream in sequence order. The immutability trigger
-- refuses UPDATE, so it is off for this one statement of the migration's own transaction.
ALTER TABLE events DISABLE TRIGGER events_are_immutable;

DO $$
DECLARE
    e             record;
    previous      bytea;
    current_type  text;
    current_id    text;
BEGIN
    FOR e IN SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
                    metadata
               FROM events
              ORDER BY aggregate_type, aggregate_id, sequence
    LOOP
        IF e.aggregate_type IS DISTINCT FROM current_type
           OR e.aggregate_id IS DISTINCT FROM current_id THEN
            previous := NULL;
            current_type := e.aggregate_type;
            current_id := e.aggregate_id;
        END IF;
        previous := events_chain_hash(previous, e.aggregate_type, e.aggregate_id, e.sequence,
                                      e.event_type, e.event_version, e.payload, e.metadata);
        UPDATE events SET hash = previous
         WHERE aggregate_type = e.aggregate_type AND aggregate_id = e.aggregate_id
           AND sequence = e.sequence;
    END LOOP;
END;
$$;

ALTER TABLE events ENABLE TRIGGER events_are_immutable;

ALTER TABLE events ALTER COLUMN hash SET NOT NULL;

-- The previous event is the one with the highest sequence below this one in the same stream:
-- one backward step on the primary key. The function is VOLATILE (plpgsql's default), so it
-- sees the rows inserted earlier in the same transaction, and those inserted earlier by the
-- same statement (a multi-row INSERT, COPY, an import's batch), in the order they were inserted.
CREATE FUNCTION events_fill_hash() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    previous bytea;
BEGIN
    SELECT p.hash INTO previous
      FROM events p
     WHERE p.aggregate_type = NEW.aggregate_type AND p.aggregate_id = NEW.aggregate_id
       AND p.sequence < NEW.sequence
     ORDER BY p.sequence DESC
     LIMIT 1;
    NEW.hash := events_chain_hash(previous, NEW.aggregate_type, NEW.aggregate_id, NEW.sequence,
                                  NEW.event_type, NEW.event_version, NEW.payload, NEW.metadata);
    RETURN NEW;
END;
$$;

CREATE TRIGGER events_fill_hash
    BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_fill_hash();
