//! Rebuilding a read model from zero.
//!
//! - In place: empty the tables and reset the checkpoint in one transaction, then catch up.
//!   Readers see the read model fill up again.
//! - Into fresh tables: build copies of the tables in a schema of their own (`rebuild_<name>`,
//!   with its own checkpoint) while the live tables keep serving and the live runner keeps
//!   updating them; then, in one transaction that holds the live checkpoint, apply what arrived
//!   meanwhile, replace the live tables with the fresh ones and move the live checkpoint to
//!   theirs. Readers switch from the old tables to the new ones at that commit.

use crate::checkpoint;
use crate::projection::Projection;
use crate::runner::{apply_pending, run_batch, use_schema, RunnerError, RunnerOptions};
use sqlx::PgPool;
use store::log::LogPosition;

/// Empties the projection's tables and applies the whole log again.
pub async fn in_place(
    pool: &PgPool,
    projection: &dyn Projection,
    options: RunnerOptions,
) -> Result<LogPosition, RunnerError> {
    let mut tx = pool.begin().await?;
    checkpoint::lock(&mut tx, projection.name()).await?;
    for table in projection.tables() {
        sqlx::query(&format!("TRUNCATE {table}"))
            .execute(&mut *tx)
            .await?;
    }
    checkpoint::set(&mut tx, projection.name(), LogPosition::default()).await?;
    tx.commit().await?;
    crate::runner::catch_up(pool, projection, options).await
}

/// Builds the projection into fresh tables, then swaps them in (see the module doc).
pub async fn into_fresh_tables(
    pool: &PgPool,
    projection: &dyn Projection,
    options: RunnerOptions,
) -> Result<LogPosition, RunnerError> {
    let name = projection.name();
    let schema = format!("rebuild_{name}");
    let shadow = format!("{name}@rebuild");

    let mut tx = pool.begin().await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut *tx)
        .await?;
    for table in projection.tables() {
        sqlx::query(&format!(
            "CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL)"
        ))
        .execute(&mut *tx)
        .await?;
    }
    checkpoint::set(&mut tx, &shadow, LogPosition::default()).await?;
    tx.commit().await?;

    while run_batch(pool, projection, &shadow, Some(&schema), options.batch_size)
        .await?
        .read
        > 0
    {}

    let mut tx = pool.begin().await?;
    use_schema(&mut tx, &schema).await?;
    checkpoint::lock(&mut tx, name).await?;
    let mut position =
        apply_pending(&mut tx, projection, &shadow, options.batch_size, None).await?;
    while position.read > 0 {
        position = apply_pending(&mut tx, projection, &shadow, options.batch_size, None).await?;
    }
    for table in projection.tables() {
        sqlx::query(&format!("DROP TABLE public.{table}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("ALTER TABLE {schema}.{table} SET SCHEMA public"))
            .execute(&mut *tx)
            .await?;
    }
    checkpoint::set(&mut tx, name, position.position).await?;
    sqlx::query("DELETE FROM projection_checkpoints WHERE name = $1")
        .bind(&shadow)
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("DROP SCHEMA {schema}"))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(position.position)
}
