//! Two ways to let go of a leased row that the outbox's queue functions do not offer, because
//! they concern the worker, not the remote:
//! - [`release`]: hand the row back, due at a given time, without counting an attempt: the
//!   remote was not called (the circuit is open, the rate limit is reached, the configuration
//!   is in dry-run mode);
//! - [`cancel`]: the row must never be sent (the learner's consent was refused at send time).
//!
//! Both touch only a row whose lease the caller holds, as `complete` and `fail` do.

use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

/// The unique index that allows one pending or held row per configuration x subject.
const OPEN_INDEX: &str = "outbox_items_open";

/// Hands a leased row back, due after `after`, attempts unchanged. False when the lease is not
/// `owner`'s, or when the projection queued a newer row for the subject meanwhile (the newer
/// row carries the latest decision: this one is then cancelled as superseded).
pub async fn release(
    pool: &PgPool,
    item_id: Uuid,
    owner: &str,
    after: Duration,
) -> Result<bool, sqlx::Error> {
    let released = sqlx::query(
        "UPDATE outbox_items
            SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL,
                next_attempt_at = now() + make_interval(secs => $3::float8), updated_at = now()
          WHERE item_id = $1 AND status = 'leased' AND lease_owner = $2",
    )
    .bind(item_id)
    .bind(owner)
    .bind(after.as_secs_f64())
    .execute(pool)
    .await;
    match released {
        Ok(done) => Ok(done.rows_affected() == 1),
        Err(sqlx::Error::Database(e)) if e.constraint() == Some(OPEN_INDEX) => {
            cancel(pool, item_id, owner, "superseded by a newer row").await?;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Cancels a leased row for `reason`. False when the lease is not `owner`'s.
pub async fn cancel(
    pool: &PgPool,
    item_id: Uuid,
    owner: &str,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE outbox_items
            SET status = 'cancelled', cancel_reason = $3, lease_owner = NULL,
                lease_expires_at = NULL, updated_at = now()
          WHERE item_id = $1 AND status = 'leased' AND lease_owner = $2",
    )
    .bind(item_id)
    .bind(owner)
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
