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
use serde_json::Value;
use sqlx::PgExecutor;

/// A place in the global log: the writing transaction and the event's global position.
/// Ordered as the log is; the default is before the first event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogPosition {
    pub transaction_id: i64,
    pub global_position: i64,
}

/// One event as the log reader returns it, upcast to the current version.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedEvent {
    pub position: LogPosition,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
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

type Row = RowOf<Value>;

/// A [`Row`] whose payload and metadata are left out unless the reader wants the event.
type SkimmedRow = RowOf<Option<Value>>;

/// Up to `limit` events after `after`, in log order, that no in-flight transaction can precede.
pub async fn read_after<'e>(
    executor: impl PgExecutor<'e>,
    after: LogPosition,
    limit: i64,
) -> Result<Vec<LoggedEvent>, sqlx::Error> {
    Ok(read_of_types(executor, after, limit, None).await?.events)
}

/// What [`read_of_types`] found among the next events of the log.
#[derive(Debug, Clone, Default, PartialEq)]
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
    let mut event = SerializedEvent::new(
        aggregate_id,
        sequence as usize,
        aggregate_type,
        event_type,
        event_version,
        payload,
        metadata,
    );
    for upcaster in upcasters {
        if upcaster.can_upcast(&event.event_type, &event.event_version) {
            event = upcaster.upcast(event);
        }
    }
    LoggedEvent {
        position: LogPosition {
            transaction_id: tx,
            global_position: pos,
        },
        aggregate_type: event.aggregate_type,
        aggregate_id: event.aggregate_id,
        sequence: event.sequence as i64,
        event_type: event.event_type,
        event_version: event.event_version,
        payload: event.payload,
        metadata: event.metadata,
        recorded_at,
    }
}
