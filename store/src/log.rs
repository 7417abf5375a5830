//! The global log: every event of every stream, in an order that readers can follow without
//! ever skipping an event.
//!
//! `global_position` is allocated when a row is inserted but becomes visible only when its
//! transaction commits, and transactions commit out of allocation order. A reader that kept
//! "everything after the highest position I have seen" would step past an event whose
//! transaction was still in flight and never see it. So the reader orders by the writing
//! transaction's id first, and takes only events of transactions older than every transaction
//! still running (`transaction_id < pg_snapshot_xmin(pg_current_snapshot())`): all of those have
//! committed or aborted, so nothing can appear behind the reader's position any more. The price
//! is that a long-running write transaction holds readers back until it ends.

use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use serde_json::value::RawValue;
use sqlx::types::Json;
use sqlx::PgExecutor;

/// A place in the global log: the writing transaction and the event's global position.
/// Ordered as the log is; the default is before the first event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogPosition {
    pub transaction_id: i64,
    pub global_position: i64,
}

/// One event as the log reader returns it, upcast to the current version.
///
/// Payload and metadata are kept as the JSON text the store sent: every reader decodes the
/// payload straight into the event type it wants (`serde_json::from_str(payload.get())`), and
/// no tree of it is built and freed in between (a tenth of a rebuild's client CPU was that).
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    pub position: LogPosition,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Box<RawValue>,
    pub metadata: Box<RawValue>,
    pub recorded_at: DateTime<Utc>,
}

/// An events row as the log reader selects it, with payload and metadata of type `P`.
type RowOf<P> = (
    i64,
    i64,
    String,
    String,
    i64,
    String,
    String,
    P,
    P,
    DateTime<Utc>,
);

type Row = RowOf<Json<Box<RawValue>>>;

/// A [`Row`] whose payload and metadata are left out unless the reader wants the event.
type SkimmedRow = RowOf<Option<Json<Box<RawValue>>>>;

/// Up to `limit` events after `after`, in log order, that no in-flight transaction can precede.
pub async fn read_after<'e>(
    executor: impl PgExecutor<'e>,
    after: LogPosition,
    limit: i64,
) -> Result<Vec<LoggedEvent>, sqlx::Error> {
    Ok(read_of_types(executor, after, limit, None).await?.events)
}

/// What [`read_of_types`] found among the next events of the log.
#[derive(Debug, Clone, Default)]
pub struct Skimmed {
    /// The events of the wanted types, in log order.
    pub events: Vec<LoggedEvent>,
    /// How many events of any type were gone past, and the position of the last of them.
    pub read: usize,
    pub last: Option<LogPosition>,
}

/// The events of the aggregate types `types` (every type with `None`) among the next `limit`
/// events after `after` that no in-flight transaction can precede. Events of other types come
/// back as their position only: their payloads are never shipped nor decoded. Batches keep the
/// boundaries they have for a reader of every event.
pub async fn read_of_types<'e>(
    executor: impl PgExecutor<'e>,
    after: LogPosition,
    limit: i64,
    types: Option<&[&str]>,
) -> Result<Skimmed, sqlx::Error> {
    let rows: Vec<SkimmedRow> = sqlx::query_as(
        // The ORDER BY names the table's columns: a bare `transaction_id` would bind to the
        // output column (its text-to-bigint cast) and sort the whole table instead of walking
        // the (transaction_id, global_position) index.
        "SELECT e.transaction_id::text::bigint, e.global_position, e.aggregate_type,
                e.aggregate_id, e.sequence, e.event_type, e.event_version,
                CASE WHEN $3::text[] IS NULL OR e.aggregate_type = ANY ($3) THEN e.payload END,
                CASE WHEN $3::text[] IS NULL OR e.aggregate_type = ANY ($3) THEN e.metadata END,
                e.recorded_at
           FROM events e
          WHERE (e.transaction_id, e.global_position) > ($1::bigint::text::xid8, $2)
            AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
          ORDER BY e.transaction_id, e.global_position
          LIMIT $4",
    )
    .bind(after.transaction_id)
    .bind(after.global_position)
    .bind(types)
    .bind(limit)
    .fetch_all(executor)
    .await?;
    let last = rows.last().map(|row| LogPosition {
        transaction_id: row.0,
        global_position: row.1,
    });
    let read = rows.len();
    let upcasters = domain::upcast::upcasters();
    let events = rows
        .into_iter()
        .filter_map(
            |(tx, pos, kind, id, sequence, event_type, version, payload, metadata, at)| {
                let row = (
                    tx, pos, kind, id, sequence, event_type, version, payload?, metadata?, at,
                );
                Some(upcast(row, &upcasters))
            },
        )
        .collect();
    Ok(Skimmed { events, read, last })
}

/// The position of the newest event a reader may take now: how far the log reaches.
pub async fn head<'e>(executor: impl PgExecutor<'e>) -> Result<LogPosition, sqlx::Error> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT e.transaction_id::text::bigint, e.global_position
           FROM events e
          WHERE e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
          ORDER BY e.transaction_id DESC, e.global_position DESC
          LIMIT 1",
    )
    .fetch_optional(executor)
    .await?;
    Ok(
        row.map_or_else(LogPosition::default, |(tx, pos)| LogPosition {
            transaction_id: tx,
            global_position: pos,
        }),
    )
}

fn upcast(row: Row, upcasters: &[Box<dyn cqrs_es::persist::EventUpcaster>]) -> LoggedEvent {
    let (
        tx,
        pos,
        aggregate_type,
        aggregate_id,
        sequence,
        event_type,
        event_version,
        payload,
        metadata,
        recorded_at,
    ) = row;
    let position = LogPosition {
        transaction_id: tx,
        global_position: pos,
    };
    let event = LoggedEvent {
        position,
        aggregate_type,
        aggregate_id,
        sequence,
        event_type,
        event_version,
        payload: payload.0,
        metadata: metadata.0,
        recorded_at,
    };
    if !upcasters
        .iter()
        .any(|u| u.can_upcast(&event.event_type, &event.event_version))
    {
        return event;
    }
    // Only an event of an older version becomes a tree, to be upcast and written back. The
    // text was read as JSON already, so it parses again, and a tree always writes out.
    let tree = |raw: &RawValue| serde_json::from_str(raw.get()).unwrap_or_default();
    let mut serialized = SerializedEvent::new(
        event.aggregate_id,
        event.sequence as usize,
        event.aggregate_type,
        event.event_type,
        event.event_version,
        tree(&event.payload),
        tree(&event.metadata),
    );
    for upcaster in upcasters {
        if upcaster.can_upcast(&serialized.event_type, &serialized.event_version) {
            serialized = upcaster.upcast(serialized);
        }
    }
    let raw = |value: &serde_json::Value| {
        serde_json::value::to_raw_value(value).expect("a JSON value serializes")
    };
    LoggedEvent {
        position,
        aggregate_type: serialized.aggregate_type,
        aggregate_id: serialized.aggregate_id,
        sequence: serialized.sequence as i64,
        event_type: serialized.event_type,
        event_version: serialized.event_version,
        payload: raw(&serialized.payload),
        metadata: raw(&serialized.metadata),
        recorded_at: event.recorded_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::persist::{EventUpcaster, SemanticVersionEventUpcaster};

    fn row(version: &str, payload: &str) -> Row {
        let raw = |text: &str| Json(RawValue::from_string(text.to_string()).unwrap());
        (
            7,
            3,
            "learner".to_string(),
            "l-1".to_string(),
            1,
            "Renamed".to_string(),
            version.to_string(),
            raw(payload),
            raw(r#"{"actor": "test"}"#),
            DateTime::<Utc>::UNIX_EPOCH,
        )
    }

    fn renamed_to_v2() -> Vec<Box<dyn EventUpcaster>> {
        vec![Box::new(SemanticVersionEventUpcaster::new(
            "Renamed",
            "2.0",
            Box::new(|mut payload| {
                payload["Renamed"]["name"] = payload["Renamed"]["old_name"].take();
                payload
            }),
        ))]
    }

    #[test]
    fn an_event_of_the_current_version_keeps_its_text() {
        let payload = r#"{"Renamed": {"name": "a"}}"#;
        let event = upcast(row("2.0", payload), &renamed_to_v2());
        assert_eq!(event.payload.get(), payload);
        assert_eq!(event.event_version, "2.0");
        assert_eq!(event.position.global_position, 3);
    }

    #[test]
    fn an_older_event_is_upcast_and_written_back_as_json() {
        let event = upcast(
            row("1.0", r#"{"Renamed": {"old_name": "a"}}"#),
            &renamed_to_v2(),
        );
        let payload: serde_json::Value = serde_json::from_str(event.payload.get()).unwrap();
        assert_eq!(payload["Renamed"]["name"], "a");
        assert_eq!(event.event_version, "2.0.0");
        assert_eq!(event.metadata.get(), r#"{"actor":"test"}"#);
        assert_eq!(event.recorded_at, DateTime::<Utc>::UNIX_EPOCH);
    }
}
