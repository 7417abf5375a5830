//! The outbox queue as transmitter workers use it: claim due rows under a lease, then complete
//! or fail them; requeue dead or cancelled rows; count rows for status pages.
//!
//! - [`claim`] leases up to N due rows (`pending` whose next attempt has come, or `leased` whose
//!   lease expired) with `FOR UPDATE SKIP LOCKED`, so competing workers get disjoint rows. A row
//!   waits while another row of the same configuration x subject is leased, so one subject's
//!   transmissions go out in order. A content row's action is decided again at claim against
//!   what the remote holds (an in-flight create may have completed since the row was queued);
//!   a delete of an item the remote does not hold is cancelled there instead of being sent.
//! - [`complete`] (the lease owner only) marks the row sent and records what the remote now
//!   holds; [`complete_many`] does it for many rows in the caller's transaction. [`fail`] (the
//!   lease owner only) counts the attempt and reschedules the row with exponential backoff and
//!   jitter (or after the remote's `Retry-After`), dead-letters it at the maximum, or cancels
//!   it when the projection queued a newer row for the subject meanwhile.
//! - These writes are the queue's operational state: a rebuild of the read model does not keep
//!   them (see the parent module's doc).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgExecutor, PgPool, Row};
use std::time::Duration;
use uuid::Uuid;

/// The first retry delay; each further failure doubles it, up to [`BACKOFF_MAX`]. The delay
/// used is a random point in its upper half (jitter).
pub const BACKOFF_BASE: Duration = Duration::from_secs(10);
/// The longest retry delay without a `Retry-After`.
pub const BACKOFF_MAX: Duration = Duration::from_secs(3600);

/// The unique index that allows one pending or held row per configuration x subject.
const OPEN_INDEX: &str = "outbox_items_open";

/// An enum stored as text: its variants, their spelling, and the parse back.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident {
        $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)?
    }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// The spelling in the table.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            fn parse(text: &str) -> Result<Self, sqlx::Error> {
                match text {
                    $($text => Ok(Self::$variant),)+
                    other => Err(sqlx::Error::Decode(
                        format!("unknown {} '{other}'", stringify!($name)).into(),
                    )),
                }
            }
        }
    };
}

text_enum!(
    /// What a row transmits: content metadata, or a learner's completion or registration.
    ItemKind { Content => "content", Learner => "learner" }
);
text_enum!(
    /// What the remote is asked to do.
    ItemAction {
        Create => "create",
        Update => "update",
        Delete => "delete",
        Completion => "completion",
        /// A learner's enrollment (xAPI `registered`).
        Registration => "registration",
    }
);
text_enum!(
    /// Where a row stands.
    ItemStatus {
        /// Due (at `next_attempt_at`).
        Pending => "pending",
        /// A completion waiting for the learner's consent.
        Held => "held",
        /// Claimed by a worker until `lease_expires_at`.
        Leased => "leased",
        /// Confirmed by the remote.
        Sent => "sent",
        /// Failed the maximum number of times; [`requeue`] puts it back.
        Dead => "dead",
        /// Nothing to send any more (see `cancel_reason`).
        Cancelled => "cancelled",
    }
);

/// One row of the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    /// The idempotency key to send to the remote system.
    pub item_id: Uuid,
    pub config_id: Uuid,
    pub customer_id: Uuid,
    /// The configuration's channel code (`SAP`, `DEGREED2`, `CSOD`, `XAPI`).
    pub channel: String,
    pub kind: ItemKind,
    pub action: ItemAction,
    pub version: i32,
    /// Content rows.
    pub content_type: Option<String>,
    pub content_key: Option<String>,
    /// Learner rows.
    pub learner_id: Option<Uuid>,
    pub course_run_id: Option<String>,
    /// Content: the item's metadata. Learner: the completion (`grade`, `percent`,
    /// `completed_at`, `progress_status`, `course_run_id`, `course_key`, `mode`) or the
    /// registration (`course_run_id`, `course_key`, `mode`, `enrolled_at`).
    pub payload: Value,
    pub status: ItemStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub cancel_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl OutboxItem {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            item_id: row.try_get("item_id")?,
            config_id: row.try_get("config_id")?,
            customer_id: row.try_get("customer_id")?,
            channel: row.try_get("channel")?,
            kind: ItemKind::parse(row.try_get("kind")?)?,
            action: ItemAction::parse(row.try_get("action")?)?,
            version: row.try_get("version")?,
            content_type: row.try_get("content_type")?,
            content_key: row.try_get("content_key")?,
            learner_id: row.try_get("learner_id")?,
            course_run_id: row.try_get("course_run_id")?,
            payload: row.try_get("payload")?,
            status: ItemStatus::parse(row.try_get("status")?)?,
            attempts: row.try_get("attempts")?,
            next_attempt_at: row.try_get("next_attempt_at")?,
            lease_owner: row.try_get("lease_owner")?,
            lease_expires_at: row.try_get("lease_expires_at")?,
            last_error: row.try_get("last_error")?,
            cancel_reason: row.try_get("cancel_reason")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// The columns of [`OutboxItem`], over `i` (items) and `cfg` (configurations).
const ITEM_COLUMNS: &str = "i.item_id, i.config_id, i.customer_id, cfg.channel, i.kind, i.action,
    i.version, i.content_type, i.content_key, i.learner_id, i.course_run_id, i.payload, i.status,
    i.attempts, i.next_attempt_at, i.lease_owner, i.lease_expires_at, i.last_error,
    i.cancel_reason, i.created_at, i.updated_at";

fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

/// Leases up to `limit` due rows to `owner` for `lease`, oldest due first (see the module doc).
pub async fn claim(
    pool: &PgPool,
    owner: &str,
    limit: i64,
    lease: Duration,
) -> Result<Vec<OutboxItem>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let due: Vec<Uuid> = sqlx::query_scalar(
        "SELECT i.item_id FROM outbox_items i
          WHERE ((i.status = 'pending' AND i.next_attempt_at <= now())
                 OR (i.status = 'leased' AND i.lease_expires_at <= now()))
            AND NOT EXISTS (SELECT 1 FROM outbox_items o
                             WHERE o.config_id = i.config_id AND o.kind = i.kind
                               AND o.subject = i.subject AND o.status = 'leased'
                               AND o.item_id <> i.item_id)
            -- The answer joins the configuration: a row without one would be leased and
            -- never handed to the worker.
            AND EXISTS (SELECT 1 FROM outbox_configs cfg WHERE cfg.config_id = i.config_id)
          ORDER BY i.next_attempt_at, i.created_at, i.item_id
          LIMIT $1
          FOR UPDATE OF i SKIP LOCKED",
    )
    .bind(limit.max(0))
    .fetch_all(&mut *tx)
    .await?;
    // A delete of content the remote does not hold: nothing to send.
    sqlx::query(
        "UPDATE outbox_items i
            SET status = 'cancelled', updated_at = now(), lease_owner = NULL,
                lease_expires_at = NULL, cancel_reason = 'the remote does not hold it'
          WHERE i.item_id = ANY ($1) AND i.kind = 'content' AND NOT i.present
            AND NOT EXISTS (SELECT 1 FROM outbox_remote_content r
                             WHERE r.config_id = i.config_id AND r.content_type = i.content_type
                               AND r.content_key = i.content_key)",
    )
    .bind(&due)
    .execute(&mut *tx)
    .await?;
    let rows = sqlx::query(&format!(
        "WITH leased AS (
             UPDATE outbox_items i
                SET status = 'leased', lease_owner = $2,
                    lease_expires_at = now() + make_interval(secs => $3::float8), updated_at = now(),
                    action = CASE
                        WHEN i.kind <> 'content' THEN i.action
                        WHEN NOT i.present THEN 'delete'
                        WHEN EXISTS (SELECT 1 FROM outbox_remote_content r
                                      WHERE r.config_id = i.config_id
                                        AND r.content_type = i.content_type
                                        AND r.content_key = i.content_key) THEN 'update'
                        ELSE 'create' END
              WHERE i.item_id = ANY ($1) AND i.status IN ('pending', 'leased')
              RETURNING i.*)
         SELECT {ITEM_COLUMNS} FROM leased i JOIN outbox_configs cfg USING (config_id)
          ORDER BY i.next_attempt_at, i.created_at, i.item_id"
    ))
    .bind(&due)
    .bind(owner)
    .bind(seconds(lease))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows.iter().map(OutboxItem::from_row).collect()
}

/// What [`complete_many`] needs of a row it marked sent: id, configuration, kind, presence,
/// content.
type SentRow = (Uuid, Uuid, String, bool, Option<String>, Option<String>);

/// Marks a leased row sent, if `owner` still holds its lease (an expired lease not yet claimed
/// again still counts), and records what the remote now holds. False when the lease is not
/// `owner`'s.
pub async fn complete(pool: &PgPool, item_id: Uuid, owner: &str) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let done = complete_many(&mut tx, owner, &[item_id]).await?;
    tx.commit().await?;
    Ok(!done.is_empty())
}

/// [`complete`] for many rows in the caller's transaction, in one statement per table: marks
/// sent the rows of `items` whose lease `owner` holds and records what the remote now holds.
/// Returns the ids it completed; rows leased by another owner (or no longer leased) are left
/// as they are.
pub async fn complete_many(
    conn: &mut PgConnection,
    owner: &str,
    items: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let sent: Vec<SentRow> = sqlx::query_as(
        "UPDATE outbox_items
            SET status = 'sent', lease_expires_at = NULL, last_error = NULL, updated_at = now()
          WHERE item_id = ANY ($1) AND status = 'leased' AND lease_owner = $2
         RETURNING item_id, config_id, kind, present, content_type, content_key",
    )
    .bind(items)
    .bind(owner)
    .fetch_all(&mut *conn)
    .await?;
    // A claim leases one row per configuration x subject at a time, so no two rows here name
    // the same remote content.
    let mut held = RemoteContent::default();
    let mut gone = RemoteContent::default();
    for (item_id, config_id, kind, present, content_type, content_key) in &sent {
        if kind != ItemKind::Content.as_str() {
            continue;
        }
        let (Some(content_type), Some(content_key)) = (content_type, content_key) else {
            continue;
        };
        let into = if *present { &mut held } else { &mut gone };
        into.push(*item_id, *config_id, content_type, content_key);
    }
    if !held.items.is_empty() {
        sqlx::query(
            "INSERT INTO outbox_remote_content
                    (config_id, content_type, content_key, item_id, sent_at)
             SELECT c, t, k, i, now()
               FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::uuid[]) AS h(c, t, k, i)
             ON CONFLICT (config_id, content_type, content_key) DO UPDATE
                SET item_id = EXCLUDED.item_id, sent_at = EXCLUDED.sent_at",
        )
        .bind(&held.configs)
        .bind(&held.types)
        .bind(&held.keys)
        .bind(&held.items)
        .execute(&mut *conn)
        .await?;
    }
    if !gone.items.is_empty() {
        sqlx::query(
            "DELETE FROM outbox_remote_content r
              USING UNNEST($1::uuid[], $2::text[], $3::text[]) AS g(c, t, k)
              WHERE r.config_id = g.c AND r.content_type = g.t AND r.content_key = g.k",
        )
        .bind(&gone.configs)
        .bind(&gone.types)
        .bind(&gone.keys)
        .execute(&mut *conn)
        .await?;
    }
    Ok(sent.into_iter().map(|row| row.0).collect())
}

/// Content rows of one [`complete_many`], as columns for one statement.
#[derive(Default)]
struct RemoteContent {
    items: Vec<Uuid>,
    configs: Vec<Uuid>,
    types: Vec<String>,
    keys: Vec<String>,
}

impl RemoteContent {
    fn push(&mut self, item: Uuid, config: Uuid, content_type: &str, content_key: &str) {
        self.items.push(item);
        self.configs.push(config);
        self.types.push(content_type.to_string());
        self.keys.push(content_key.to_string());
    }
}

/// What [`fail`] did with the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Pending again from this time.
    Retry { next_attempt_at: DateTime<Utc> },
    /// Failed `max_attempts` times: dead-lettered.
    Dead,
    /// A newer row for the same subject is queued: this one is cancelled.
    Superseded,
    /// The lease is not the caller's (expired and claimed by another, or the row is gone).
    NotLeased,
}

/// Records a failed attempt of a leased row (see the module doc). `retry_after` (the remote's
/// `Retry-After`) replaces the backoff when given.
pub async fn fail(
    pool: &PgPool,
    item_id: Uuid,
    owner: &str,
    error: &str,
    retry_after: Option<Duration>,
    max_attempts: i32,
) -> Result<FailOutcome, sqlx::Error> {
    // The projection may queue a newer row for the subject while this runs; the open-row index
    // then refuses to make this one pending, and the second try sees the newer row.
    let mut tries = 0;
    loop {
        tries += 1;
        match try_fail(pool, item_id, owner, error, retry_after, max_attempts).await {
            Err(sqlx::Error::Database(e)) if e.constraint() == Some(OPEN_INDEX) && tries < 3 => {}
            outcome => return outcome,
        }
    }
}

async fn try_fail(
    pool: &PgPool,
    item_id: Uuid,
    owner: &str,
    error: &str,
    retry_after: Option<Duration>,
    max_attempts: i32,
) -> Result<FailOutcome, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row: Option<(i32, bool)> = sqlx::query_as(
        "SELECT i.attempts,
                EXISTS (SELECT 1 FROM outbox_items o
                         WHERE o.config_id = i.config_id AND o.kind = i.kind
                           AND o.subject = i.subject AND o.status IN ('pending', 'held'))
           FROM outbox_items i
          WHERE i.item_id = $1 AND i.status = 'leased' AND i.lease_owner = $2
            FOR UPDATE",
    )
    .bind(item_id)
    .bind(owner)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((attempts, superseded)) = row else {
        return Ok(FailOutcome::NotLeased);
    };
    let attempts = attempts + 1;
    let (status, outcome) = if superseded {
        ("cancelled", FailOutcome::Superseded)
    } else if attempts >= max_attempts {
        ("dead", FailOutcome::Dead)
    } else {
        // Filled in below with the time the database picks.
        (
            "pending",
            FailOutcome::Retry {
                next_attempt_at: DateTime::<Utc>::MIN_UTC,
            },
        )
    };
    let (delay, jitter) = match retry_after {
        Some(after) => (after, false),
        None => (backoff(attempts), true),
    };
    let next: DateTime<Utc> = sqlx::query_scalar(
        "UPDATE outbox_items
            SET status = $3::text, attempts = $4, last_error = $5, lease_owner = NULL,
                lease_expires_at = NULL, updated_at = now(),
                cancel_reason = CASE WHEN $3::text = 'cancelled'
                                     THEN 'superseded by a newer row' END,
                next_attempt_at = CASE WHEN $3::text = 'pending'
                    THEN now() + make_interval(
                        secs => $6::float8 * CASE WHEN $7::boolean THEN 0.5 + random() / 2
                                                  ELSE 1 END)
                    ELSE next_attempt_at END
          WHERE item_id = $1 AND lease_owner = $2
         RETURNING next_attempt_at",
    )
    .bind(item_id)
    .bind(owner)
    .bind(status)
    .bind(attempts)
    .bind(error)
    .bind(seconds(delay))
    .bind(jitter)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(match outcome {
        FailOutcome::Retry { .. } => FailOutcome::Retry {
            next_attempt_at: next,
        },
        other => other,
    })
}

/// The delay before the attempt after `attempts` failures: [`BACKOFF_BASE`] doubled per
/// failure after the first, at most [`BACKOFF_MAX`] (before jitter).
fn backoff(attempts: i32) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    BACKOFF_BASE.saturating_mul(1 << doublings).min(BACKOFF_MAX)
}

/// Puts a dead or cancelled row back in the queue, due now, with no attempts counted. False
/// when the row is neither dead nor cancelled, or when its subject already has a pending or
/// held row (which carries the newer decision).
pub async fn requeue(pool: &PgPool, item_id: Uuid) -> Result<bool, sqlx::Error> {
    let outcome = sqlx::query(
        "UPDATE outbox_items
            SET status = 'pending', attempts = 0, next_attempt_at = now(), lease_owner = NULL,
                lease_expires_at = NULL, cancel_reason = NULL, updated_at = now()
          WHERE item_id = $1 AND status IN ('dead', 'cancelled')",
    )
    .bind(item_id)
    .execute(pool)
    .await;
    match outcome {
        Ok(done) => Ok(done.rows_affected() == 1),
        Err(sqlx::Error::Database(e)) if e.constraint() == Some(OPEN_INDEX) => Ok(false),
        Err(e) => Err(e),
    }
}

/// How many rows of one configuration are in one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCount {
    pub config_id: Uuid,
    pub status: ItemStatus,
    pub count: i64,
}

/// Row counts per configuration and status, for status pages. A lease that expired counts as
/// `leased` until a worker claims the row again.
pub async fn pending_counts(pool: &PgPool) -> Result<Vec<StatusCount>, sqlx::Error> {
    let rows: Vec<(Uuid, String, i64)> = sqlx::query_as(
        "SELECT config_id, status, count(*) FROM outbox_items
          GROUP BY config_id, status ORDER BY config_id, status",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(config_id, status, count)| {
            Ok(StatusCount {
                config_id,
                status: ItemStatus::parse(&status)?,
                count,
            })
        })
        .collect()
}

/// Every row of a configuration, oldest first.
pub async fn items_of_config<'e>(
    conn: impl PgExecutor<'e>,
    config_id: Uuid,
) -> Result<Vec<OutboxItem>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {ITEM_COLUMNS} FROM outbox_items i JOIN outbox_configs cfg USING (config_id)
          WHERE i.config_id = $1
          ORDER BY i.created_at, i.version, i.subject"
    ))
    .bind(config_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(OutboxItem::from_row).collect()
}

/// The content a configuration's remote system holds, as `(content_type, content_key)`.
pub async fn remote_content<'e>(
    conn: impl PgExecutor<'e>,
    config_id: Uuid,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT content_type, content_key FROM outbox_remote_content
          WHERE config_id = $1 ORDER BY content_type, content_key",
    )
    .bind(config_id)
    .fetch_all(conn)
    .await
}
