//! A projection's checkpoint: the log position of the last event it applied.
//!
//! Read with `FOR UPDATE` at the start of a batch and advanced by compare-and-set at its end,
//! in the batch's own transaction. Two runners of one projection (a standby that took over while
//! the old leader still had a batch in flight) therefore serialize on the row, and the second
//! finds the position moved: a batch is never applied twice.

use sqlx::PgConnection;
use store::log::LogPosition;

/// The checkpoint of `name`, locked until the transaction ends; created at zero if new.
pub async fn lock(conn: &mut PgConnection, name: &str) -> Result<LogPosition, sqlx::Error> {
    sqlx::query(
        "INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .execute(&mut *conn)
    .await?;
    let (transaction_id, global_position): (i64, i64) = sqlx::query_as(
        "SELECT transaction_id::text::bigint, global_position FROM projection_checkpoints
          WHERE name = $1 FOR UPDATE",
    )
    .bind(name)
    .fetch_one(&mut *conn)
    .await?;
    Ok(LogPosition {
        transaction_id,
        global_position,
    })
}

/// Moves the checkpoint from `from` to `to`; false when it was not at `from` any more.
pub async fn advance(
    conn: &mut PgConnection,
    name: &str,
    from: LogPosition,
    to: LogPosition,
) -> Result<bool, sqlx::Error> {
    let moved = sqlx::query(
        "UPDATE projection_checkpoints
            SET transaction_id = $4::bigint::text::xid8, global_position = $5,
                last_error = NULL, last_error_at = NULL, updated_at = now()
          WHERE name = $1 AND transaction_id = $2::bigint::text::xid8 AND global_position = $3",
    )
    .bind(name)
    .bind(from.transaction_id)
    .bind(from.global_position)
    .bind(to.transaction_id)
    .bind(to.global_position)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(moved == 1)
}

/// Sets the checkpoint to `to` whatever it was (a rebuild's reset and its swap).
pub async fn set(conn: &mut PgConnection, name: &str, to: LogPosition) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, transaction_id, global_position)
         VALUES ($1, $2::bigint::text::xid8, $3)
         ON CONFLICT (name) DO UPDATE
            SET transaction_id = EXCLUDED.transaction_id, global_position = EXCLUDED.global_position,
                last_error = NULL, last_error_at = NULL, updated_at = now()",
    )
    .bind(name)
    .bind(to.transaction_id)
    .bind(to.global_position)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records the error that stopped a projection, for its status.
pub async fn record_error(
    conn: &mut PgConnection,
    name: &str,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projection_checkpoints SET last_error = $2, last_error_at = now() WHERE name = $1",
    )
    .bind(name)
    .bind(error)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
