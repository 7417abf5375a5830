//! Rebuilding a read model from zero.
//!
//! - In place: empty the tables and reset the checkpoint in one transaction, then catch up.
//!   Readers see the read model fill up again.
//! - Several read models in place together: the log is read once for all of them, up to two
//!   batches ahead of the slowest, and each applies every batch in a transaction of its own, so
//!   they work at the same time on the same events (see [`in_place_together`]); a read model
//!   that can fold the log in memory writes each of its tables once instead.
//! - Into fresh tables: build copies of the tables in a schema of their own (`rebuild_<name>`,
//!   with its own checkpoint) while the live tables keep serving and the live runner keeps
//!   updating them; then, in one transaction that holds the live checkpoint, apply what arrived
//!   meanwhile, replace the live tables with the fresh ones and move the live checkpoint to
//!   theirs. Readers switch from the old tables to the new ones at that commit. A read model
//!   that can fold the log in memory fills the fresh tables from its fold first.

use crate::checkpoint;
use crate::projection::{Fold, Projection};
use crate::runner::{
    apply_pending, apply_read, begin_batch, catch_up, events_of, run_batch, use_schema,
    RunnerError, RunnerOptions,
};
use sqlx::PgPool;
use std::sync::Arc;
use store::log::{self, LogPosition, LoggedEvent};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// Empties the projection's tables and applies the whole log again.
pub async fn in_place(
    pool: &PgPool,
    projection: &dyn Projection,
    options: RunnerOptions,
) -> Result<LogPosition, RunnerError> {
    reset(pool, &[projection]).await?;
    catch_up(pool, projection, options).await
}

/// Empties the tables of `projections` and moves their checkpoints back to the start, in one
/// transaction.
async fn reset(pool: &PgPool, projections: &[&dyn Projection]) -> Result<(), RunnerError> {
    let mut tx = pool.begin().await?;
    for projection in projections {
        checkpoint::lock(&mut tx, projection.name()).await?;
        for table in projection.tables() {
            sqlx::query(&format!("TRUNCATE {table}"))
                .execute(&mut *tx)
                .await?;
        }
        checkpoint::set(&mut tx, projection.name(), LogPosition::default()).await?;
    }
    tx.commit().await?;
    for projection in projections {
        projection.tables_emptied();
    }
    Ok(())
}

/// Batches read ahead of the slowest read model in [`in_place_together`].
const READ_AHEAD: usize = 2;

/// Log events read once for every read model of [`in_place_together`]: those after `from` up to
/// `last`, of the types any of them reads.
struct SharedBatch {
    from: LogPosition,
    last: LogPosition,
    events: Vec<LoggedEvent>,
}

/// Empties the tables of `projections` and applies the whole log to all of them again, reading
/// it once: a reader task reads each batch (of every type one of them reads) and hands it to a
/// task per read model, which applies it in a transaction of its own and advances its
/// checkpoint, while the reader reads on, up to [`READ_AHEAD`] batches ahead of the slowest. A
/// read model that folds from zero ([`Projection::fold_from_zero`]) folds the batches in memory
/// instead and writes its tables once, at the end of the read ([`write_fold`]), or when it holds
/// [`MAX_HELD`] rows, going on batch by batch from there. Each read model then catches up on
/// its own with what arrived meanwhile; a read model that fails on a batch (or whose fold
/// fails on an event) stops taking batches, and its catch-up meets the same event again and
/// stops there as a runner does (a poison event is recorded on its checkpoint). `progress`, when
/// given, follows the position up to which the log has been handed to every read model (at most
/// [`READ_AHEAD`] batches ahead of the slowest): the progress of a rebuild whose folds write
/// nothing until the end. Returns the position each reached, in the order given, or the first
/// read model's error once every other has caught up.
pub async fn in_place_together(
    pool: &PgPool,
    projections: &[Arc<dyn Projection>],
    options: RunnerOptions,
    progress: Option<&watch::Sender<LogPosition>>,
) -> Result<Vec<LogPosition>, RunnerError> {
    let borrowed: Vec<&dyn Projection> = projections.iter().map(|p| p.as_ref()).collect();
    reset(pool, &borrowed).await?;

    let mut appliers = JoinSet::new();
    let mut senders = Vec::new();
    for projection in projections {
        let (sender, mut batches) = mpsc::channel::<Arc<SharedBatch>>(READ_AHEAD);
        senders.push(sender);
        let (pool, projection) = (pool.clone(), Arc::clone(projection));
        appliers.spawn(async move {
            let projection = projection.as_ref();
            // The live tables and checkpoint, for a fold's write.
            let live = (projection.name(), None);
            let mut fold = projection.fold_from_zero();
            let mut folded = None;
            while let Some(batch) = batches.recv().await {
                let applied = match fold.take() {
                    Some(mut folding) => {
                        if folding
                            .apply(&events_of(projection, &batch.events))
                            .is_err()
                        {
                            // Its catch-up, batch by batch from zero, stops at the same event.
                            return;
                        }
                        if folding.held() < MAX_HELD {
                            fold = Some(folding);
                            folded = Some(batch.last);
                            release(batch);
                            continue;
                        }
                        write_fold(&pool, projection, live, folding, batch.last).await
                    }
                    None => apply_shared(&pool, projection, &batch).await,
                };
                release(batch);
                if let Err(error) = applied {
                    // Its catch-up meets the error again and deals with it as a runner does.
                    tracing::debug!(projection = projection.name(), %error, "left the shared read");
                    return;
                }
            }
            if let (Some(folding), Some(last)) = (fold, folded) {
                if let Err(error) = write_fold(&pool, projection, live, folding, last).await {
                    tracing::debug!(projection = projection.name(), %error, "fold not written");
                }
            }
        });
    }
    let types = read_types(&borrowed);
    let mut from = LogPosition::default();
    let read = loop {
        let skimmed =
            match log::read_of_types(pool, from, options.batch_size, types.as_deref()).await {
                Ok(skimmed) => skimmed,
                Err(error) => break Err(error),
            };
        let Some(last) = skimmed.last else {
            break Ok(());
        };
        let batch = Arc::new(SharedBatch {
            from,
            last,
            events: skimmed.events,
        });
        for sender in &senders {
            // A read model that left the shared read dropped its receiver.
            let _ = sender.send(Arc::clone(&batch)).await;
        }
        if senders.iter().all(|sender| sender.is_closed()) {
            break Ok(());
        }
        if let Some(progress) = progress {
            progress.send_replace(last);
        }
        from = last;
    };
    drop(senders);
    while let Some(joined) = appliers.join_next().await {
        if let Err(panicked) = joined {
            std::panic::resume_unwind(panicked.into_panic());
        }
    }
    read?;

    let mut reached = Vec::new();
    let mut first_error = None;
    for projection in &borrowed {
        match catch_up(pool, *projection, options).await {
            Ok(position) => reached.push(position),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    match first_error {
        None => Ok(reached),
        Some(error) => Err(error),
    }
}

/// Lets go of a shared batch on a blocking thread: the last read model to let go frees every
/// event of the batch, and that is the slowest one, whose next batch would wait for it.
fn release(batch: Arc<SharedBatch>) {
    tokio::task::spawn_blocking(move || drop(batch));
}

/// The aggregate types any of `projections` reads; `None` when one of them reads every type.
fn read_types(projections: &[&dyn Projection]) -> Option<Vec<&'static str>> {
    let mut types = Vec::new();
    for projection in projections {
        for kind in projection.reads()? {
            if !types.contains(kind) {
                types.push(*kind);
            }
        }
    }
    Some(types)
}

/// Applies a shared batch to one read model in a transaction of its own. A checkpoint already
/// past some of the batch's events (a runner of the read model working beside the rebuild)
/// takes only the rest.
async fn apply_shared(
    pool: &PgPool,
    projection: &dyn Projection,
    batch: &SharedBatch,
) -> Result<(), RunnerError> {
    let name = projection.name();
    let mut tx = pool.begin().await?;
    let at = begin_batch(&mut tx, name).await?;
    if at >= batch.last {
        return Ok(());
    }
    if at < batch.from {
        return Err(RunnerError::CheckpointMoved(name.to_string()));
    }
    let start = batch.events.partition_point(|e| e.position <= at);
    apply_read(
        &mut tx,
        projection,
        name,
        at,
        &batch.events[start..],
        batch.last,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The most rows a read model's fold may hold (about a gigabyte): past it, the fold is written
/// out and the read model goes on batch by batch.
const MAX_HELD: usize = 1_000_000;

/// Writes a read model's fold into its empty tables (in `schema`, when given) and moves its
/// checkpoint `name` from zero to `last`, in one transaction. Every index of the tables is
/// dropped first, keys included, and built again once the rows are in: building an index over a
/// table is several times cheaper than keeping it up row by row, and a plain insert into a table
/// without a key is several times cheaper than an upsert (the fold holds one row per key; a
/// duplicate fails the key's build, and the write with it). Readers of the tables wait for the
/// commit. A checkpoint moved meanwhile (a runner of the read model working beside the
/// rebuild) leaves the tables to that runner.
async fn write_fold(
    pool: &PgPool,
    projection: &dyn Projection,
    (name, schema): (&str, Option<&str>),
    fold: Box<dyn Fold>,
    last: LogPosition,
) -> Result<(), RunnerError> {
    let mut tx = pool.begin().await?;
    if let Some(schema) = schema {
        use_schema(&mut tx, schema).await?;
    }
    let at = begin_batch(&mut tx, name).await?;
    if at != LogPosition::default() {
        return Err(RunnerError::CheckpointMoved(name.to_string()));
    }
    // Per index: how to drop it and how to build it again; a key or unique constraint is
    // dropped and added back as a constraint.
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT CASE WHEN c.oid IS NULL THEN format('DROP INDEX %s', i.indexrelid::regclass)
                     ELSE format('ALTER TABLE %s DROP CONSTRAINT %I', i.indrelid::regclass,
                                 c.conname) END,
                CASE WHEN c.oid IS NULL THEN pg_get_indexdef(i.indexrelid)
                     ELSE format('ALTER TABLE %s ADD CONSTRAINT %I %s', i.indrelid::regclass,
                                 c.conname, pg_get_constraintdef(c.oid)) END
           FROM pg_index i
           LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
          WHERE i.indrelid = ANY ($1::text[]::regclass[])",
    )
    .bind(projection.tables())
    .fetch_all(&mut *tx)
    .await?;
    for (drop, _) in &indexes {
        sqlx::query(drop).execute(&mut *tx).await?;
    }
    fold.write(&mut tx).await?;
    for (_, build) in &indexes {
        sqlx::query(build).execute(&mut *tx).await?;
    }
    if !checkpoint::advance(&mut tx, name, at, last).await? {
        return Err(RunnerError::CheckpointMoved(name.to_string()));
    }
    tx.commit().await?;
    Ok(())
}

/// Folds the log from its first event into `fold` and writes it into the fresh tables
/// ([`write_fold`]), or as much of it as [`MAX_HELD`] rows allow; the batches go on from there.
/// An event the fold cannot apply drops it: the batches from zero stop at that event.
async fn fold_fresh(
    pool: &PgPool,
    projection: &dyn Projection,
    target: (&str, Option<&str>),
    mut fold: Box<dyn Fold>,
    options: RunnerOptions,
) -> Result<(), RunnerError> {
    let mut from = LogPosition::default();
    loop {
        let read = log::read_of_types(pool, from, options.batch_size, projection.reads()).await?;
        let Some(last) = read.last else { break };
        if fold.apply(&events_of(projection, &read.events)).is_err() {
            return Ok(());
        }
        from = last;
        if fold.held() >= MAX_HELD {
            break;
        }
    }
    if from == LogPosition::default() {
        return Ok(());
    }
    write_fold(pool, projection, target, fold, from).await
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

    if let Some(fold) = projection.fold_from_zero() {
        fold_fresh(pool, projection, (&shadow, Some(&schema)), fold, options).await?;
    }
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
