//! Where every projection stands: position, lag behind the log in events and in seconds, and
//! the error that stopped it, if any.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use store::log::LogPosition;

/// The status of one projection.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionStatus {
    pub name: String,
    pub position: LogPosition,
    /// Events in the log after the position.
    pub lag_events: i64,
    /// Age of the oldest event not yet applied (0 when caught up).
    pub lag_seconds: f64,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

type Row = (
    String,
    i64,
    i64,
    i64,
    Option<f64>,
    Option<String>,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
);

/// The status of every projection that has run (rebuilds in progress included).
pub async fn all(pool: &PgPool) -> Result<Vec<ProjectionStatus>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT c.name, c.transaction_id::text::bigint, c.global_position,
                (SELECT count(*) FROM events e
                  WHERE (e.transaction_id, e.global_position) > (c.transaction_id, c.global_position)),
                (SELECT extract(epoch FROM clock_timestamp() - e.recorded_at)::float8 FROM events e
                  WHERE (e.transaction_id, e.global_position) > (c.transaction_id, c.global_position)
                  ORDER BY e.transaction_id, e.global_position LIMIT 1),
                c.last_error, c.last_error_at, c.updated_at
           FROM projection_checkpoints c
          ORDER BY c.name",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(name, tx, pos, lag_events, lag_seconds, last_error, last_error_at, updated_at)| {
                ProjectionStatus {
                    name,
                    position: LogPosition {
                        transaction_id: tx,
                        global_position: pos,
                    },
                    lag_events,
                    lag_seconds: lag_seconds.unwrap_or(0.0),
                    last_error,
                    last_error_at,
                    updated_at,
                }
            },
        )
        .collect())
}
