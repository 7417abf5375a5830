//! The transmission audit (projection `transmissions`): every outcome a transmitter worker
//! recorded (`TransmissionAttempted` events of the `transmission` aggregate), per channel
//! configuration and per outbox item.
//!
//! Tables (migration `20261127000030_transmissions.sql`):
//! - `transmission_attempts`: one row per attempt (status, HTTP status, scrubbed excerpt,
//!   duration), keyed by the event's global position;
//! - `transmission_items`: per outbox item, the number of attempts, the latest outcome and when
//!   the remote first accepted it.
//!
//! Unlike the outbox's own operational columns, this history is built from events, so it
//! survives a rebuild of the outbox and of itself.
//!
//! A batch is folded in memory: its attempts are inserted in one statement, and each item's
//! row is written once with the outcome of its last attempt in the batch.

use crate::projection::{decode, ApplyError, Projection};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::transmission::TransmissionEvent;
use rustc_hash::FxHashMap;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use store::log::LoggedEvent;
use uuid::Uuid;

/// The transmission audit read model (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct Transmissions;

const AGGREGATE: &str = "transmission";

/// One recorded attempt, as the audit shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TransmissionAttempt {
    /// The event's global position: the attempt's place in the audit.
    pub position: i64,
    pub item_id: Uuid,
    pub config_id: Uuid,
    pub customer_id: Uuid,
    /// Channel code (`SAP`, `DEGREED2`, `CSOD`, `XAPI`).
    pub channel: String,
    pub action: String,
    pub learner_id: Option<Uuid>,
    pub attempt: i32,
    /// `sent`, `failed`, `dead_lettered`, `dry_run`, `withheld` or `skipped`.
    pub status: String,
    pub http_status: Option<i32>,
    pub excerpt: Option<String>,
    pub duration_ms: i64,
    pub attempted_at: DateTime<Utc>,
}

impl TransmissionAttempt {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            position: row.try_get("position")?,
            item_id: row.try_get("item_id")?,
            config_id: row.try_get("config_id")?,
            customer_id: row.try_get("customer_id")?,
            channel: row.try_get("channel")?,
            action: row.try_get("action")?,
            learner_id: row.try_get("learner_id")?,
            attempt: row.try_get("attempt")?,
            status: row.try_get("status")?,
            http_status: row.try_get("http_status")?,
            excerpt: row.try_get("excerpt")?,
            duration_ms: row.try_get("duration_ms")?,
            attempted_at: row.try_get("attempted_at")?,
        })
    }
}

/// The latest state of one outbox item in the audit.
#[derive(Debug, Clone, PartialEq)]
pub struct TransmissionItem {
    pub item_id: Uuid,
    pub config_id: Uuid,
    pub customer_id: Uuid,
    pub channel: String,
    pub action: String,
    pub learner_id: Option<Uuid>,
    pub attempts: i32,
    pub last_status: String,
    pub last_http_status: Option<i32>,
    pub last_excerpt: Option<String>,
    pub last_at: DateTime<Utc>,
    pub first_sent_at: Option<DateTime<Utc>>,
}

impl TransmissionItem {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            item_id: row.try_get("item_id")?,
            config_id: row.try_get("config_id")?,
            customer_id: row.try_get("customer_id")?,
            channel: row.try_get("channel")?,
            action: row.try_get("action")?,
            learner_id: row.try_get("learner_id")?,
            attempts: row.try_get("attempts")?,
            last_status: row.try_get("last_status")?,
            last_http_status: row.try_get("last_http_status")?,
            last_excerpt: row.try_get("last_excerpt")?,
            last_at: row.try_get("last_at")?,
            first_sent_at: row.try_get("first_sent_at")?,
        })
    }
}

/// What a batch adds to one item's row.
struct ItemChange {
    last: usize,
    attempts: i32,
    first_sent_at: Option<DateTime<Utc>>,
}

#[async_trait]
impl Projection for Transmissions {
    fn name(&self) -> &'static str {
        "transmissions"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["transmission_attempts", "transmission_items"]
    }

    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&[AGGREGATE])
    }

    async fn apply(&self, conn: &mut PgConnection, event: &LoggedEvent) -> Result<(), ApplyError> {
        self.apply_batch(conn, &[event])
            .await
            .map_err(|(_, error)| error)
    }

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&LoggedEvent],
    ) -> Result<(), (usize, ApplyError)> {
        let mut attempts = Vec::new();
        for (index, event) in events.iter().enumerate() {
            if event.aggregate_type != AGGREGATE {
                continue;
            }
            let decoded: TransmissionEvent = decode(event).map_err(|e| (index, e))?;
            attempts.push((event.position.global_position, decoded));
        }
        if attempts.is_empty() {
            return Ok(());
        }
        write(conn, &attempts).await.map_err(|e| (0, e.into()))
    }
}

/// Columns of an attempt, as arrays for one `UNNEST` insert.
#[derive(Default)]
struct Columns {
    position: Vec<i64>,
    item_id: Vec<Uuid>,
    config_id: Vec<Uuid>,
    customer_id: Vec<Uuid>,
    channel: Vec<String>,
    action: Vec<String>,
    learner_id: Vec<Option<Uuid>>,
    attempt: Vec<i32>,
    status: Vec<String>,
    http_status: Vec<Option<i32>>,
    excerpt: Vec<Option<String>>,
    duration_ms: Vec<i64>,
    attempted_at: Vec<DateTime<Utc>>,
}

impl Columns {
    fn push(&mut self, position: i64, event: &TransmissionEvent) {
        let TransmissionEvent::TransmissionAttempted {
            item_id,
            config_id,
            customer_id,
            channel,
            action,
            learner_id,
            attempt,
            status,
            http_status,
            excerpt,
            duration_ms,
            at,
        } = event;
        self.position.push(position);
        self.item_id.push(*item_id);
        self.config_id.push(config_id.0);
        self.customer_id.push(customer_id.0);
        self.channel.push(channel.as_str().to_string());
        self.action.push(action.as_str().to_string());
        self.learner_id.push(learner_id.map(|l| l.0));
        self.attempt
            .push(i32::try_from(*attempt).unwrap_or(i32::MAX));
        self.status.push(status.as_str().to_string());
        self.http_status.push(http_status.map(i32::from));
        self.excerpt.push(excerpt.clone());
        self.duration_ms
            .push(i64::try_from(*duration_ms).unwrap_or(i64::MAX));
        self.attempted_at.push(*at);
    }

    /// Keeps only the rows at `indexes`.
    fn select(&self, indexes: &[usize]) -> Self {
        fn pick<T: Clone>(values: &[T], indexes: &[usize]) -> Vec<T> {
            indexes.iter().map(|&i| values[i].clone()).collect()
        }
        Self {
            position: pick(&self.position, indexes),
            item_id: pick(&self.item_id, indexes),
            config_id: pick(&self.config_id, indexes),
            customer_id: pick(&self.customer_id, indexes),
            channel: pick(&self.channel, indexes),
            action: pick(&self.action, indexes),
            learner_id: pick(&self.learner_id, indexes),
            attempt: pick(&self.attempt, indexes),
            status: pick(&self.status, indexes),
            http_status: pick(&self.http_status, indexes),
            excerpt: pick(&self.excerpt, indexes),
            duration_ms: pick(&self.duration_ms, indexes),
            attempted_at: pick(&self.attempted_at, indexes),
        }
    }
}

async fn write(
    conn: &mut PgConnection,
    attempts: &[(i64, TransmissionEvent)],
) -> Result<(), sqlx::Error> {
    let mut columns = Columns::default();
    let mut items: FxHashMap<Uuid, ItemChange> = FxHashMap::default();
    let mut order: Vec<Uuid> = Vec::new();
    for (index, (position, event)) in attempts.iter().enumerate() {
        columns.push(*position, event);
        let TransmissionEvent::TransmissionAttempted {
            item_id,
            status,
            at,
            ..
        } = event;
        let sent = (*status == domain::transmission::TransmissionStatus::Sent).then_some(*at);
        let change = items.entry(*item_id).or_insert_with(|| {
            order.push(*item_id);
            ItemChange {
                last: index,
                attempts: 0,
                first_sent_at: None,
            }
        });
        change.last = index;
        change.attempts += 1;
        change.first_sent_at = change.first_sent_at.or(sent);
    }
    sqlx::query(
        "INSERT INTO transmission_attempts
                (position, item_id, config_id, customer_id, channel, action, learner_id, attempt,
                 status, http_status, excerpt, duration_ms, attempted_at)
         SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[],
                              $6::text[], $7::uuid[], $8::int[], $9::text[], $10::int[],
                              $11::text[], $12::bigint[], $13::timestamptz[])
         ON CONFLICT (position) DO NOTHING",
    )
    .bind(&columns.position)
    .bind(&columns.item_id)
    .bind(&columns.config_id)
    .bind(&columns.customer_id)
    .bind(&columns.channel)
    .bind(&columns.action)
    .bind(&columns.learner_id)
    .bind(&columns.attempt)
    .bind(&columns.status)
    .bind(&columns.http_status)
    .bind(&columns.excerpt)
    .bind(&columns.duration_ms)
    .bind(&columns.attempted_at)
    .execute(&mut *conn)
    .await?;
    let lasts: Vec<usize> = order.iter().map(|id| items[id].last).collect();
    let last = columns.select(&lasts);
    let counts: Vec<i32> = order.iter().map(|id| items[id].attempts).collect();
    let first_sent: Vec<Option<DateTime<Utc>>> =
        order.iter().map(|id| items[id].first_sent_at).collect();
    sqlx::query(
        "INSERT INTO transmission_items
                (item_id, config_id, customer_id, channel, action, learner_id, attempts,
                 last_status, last_http_status, last_excerpt, last_at, first_sent_at)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[],
                              $6::uuid[], $7::int[], $8::text[], $9::int[], $10::text[],
                              $11::timestamptz[], $12::timestamptz[])
         ON CONFLICT (item_id) DO UPDATE
            SET action = EXCLUDED.action,
                attempts = transmission_items.attempts + EXCLUDED.attempts,
                last_status = EXCLUDED.last_status,
                last_http_status = EXCLUDED.last_http_status,
                last_excerpt = EXCLUDED.last_excerpt,
                last_at = EXCLUDED.last_at,
                first_sent_at = COALESCE(transmission_items.first_sent_at,
                                         EXCLUDED.first_sent_at)",
    )
    .bind(&last.item_id)
    .bind(&last.config_id)
    .bind(&last.customer_id)
    .bind(&last.channel)
    .bind(&last.action)
    .bind(&last.learner_id)
    .bind(&counts)
    .bind(&last.status)
    .bind(&last.http_status)
    .bind(&last.excerpt)
    .bind(&last.attempted_at)
    .bind(&first_sent)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

const ATTEMPT_COLUMNS: &str = "position, item_id, config_id, customer_id, channel, action,
    learner_id, attempt, status, http_status, excerpt, duration_ms, attempted_at";

/// Every attempt recorded for one outbox item, in order.
pub async fn attempts_of_item(
    pool: &PgPool,
    item_id: Uuid,
) -> Result<Vec<TransmissionAttempt>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {ATTEMPT_COLUMNS} FROM transmission_attempts WHERE item_id = $1 ORDER BY position"
    ))
    .bind(item_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(TransmissionAttempt::from_row).collect()
}

/// Which attempts of a configuration to read: newest first, optionally of one status, before
/// a position (the last one of the previous page), at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct AttemptFilter {
    pub status: Option<String>,
    pub before: Option<i64>,
    pub limit: i64,
}

/// A page of a configuration's attempts, newest first (see [`AttemptFilter`]).
pub async fn attempts_of_config(
    pool: &PgPool,
    config_id: Uuid,
    filter: &AttemptFilter,
) -> Result<Vec<TransmissionAttempt>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {ATTEMPT_COLUMNS} FROM transmission_attempts
          WHERE config_id = $1 AND ($2::text IS NULL OR status = $2)
            AND ($3::bigint IS NULL OR position < $3)
          ORDER BY position DESC LIMIT $4"
    ))
    .bind(config_id)
    .bind(&filter.status)
    .bind(filter.before)
    .bind(filter.limit.clamp(0, 1000))
    .fetch_all(pool)
    .await?;
    rows.iter().map(TransmissionAttempt::from_row).collect()
}

/// The audit's state of one outbox item, if anything was recorded for it.
pub async fn item(pool: &PgPool, item_id: Uuid) -> Result<Option<TransmissionItem>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM transmission_items WHERE item_id = $1")
        .bind(item_id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(TransmissionItem::from_row).transpose()
}

/// How many items of a configuration stand at each latest status, by status.
pub async fn status_counts_of_config(
    pool: &PgPool,
    config_id: Uuid,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT last_status, count(*) FROM transmission_items WHERE config_id = $1
          GROUP BY last_status ORDER BY last_status",
    )
    .bind(config_id)
    .fetch_all(pool)
    .await
}

/// How many items stand at each latest outcome, per channel: `(channel, status, count)`.
pub async fn outcome_counts(pool: &PgPool) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT channel, last_status, count(*) FROM transmission_items
          GROUP BY channel, last_status ORDER BY channel, last_status",
    )
    .fetch_all(pool)
    .await
}
