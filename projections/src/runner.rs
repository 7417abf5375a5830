//! The projection runner: wait for events, read a batch after the checkpoint, apply it and
//! advance the checkpoint in one transaction, repeat.
//!
//! - Exactly-once effects: the batch's writes and the checkpoint commit together; a runner
//!   killed mid-batch loses the whole batch, which the next runner applies again from the same
//!   checkpoint.
//! - One active runner per projection across processes: the leader holds a session advisory
//!   lock on a connection of its own; when its process dies the connection closes, the lock is
//!   released, and a standby's next attempt takes it. Even two runners at once (a standby taking
//!   over while the old leader's last batch is in flight) apply nothing twice: both lock the
//!   checkpoint row, and the second finds it moved.
//! - Woken by LISTEN/NOTIFY (the event store notifies after commits), polling as the fallback.
//! - A poison event (one the projection cannot apply) stops the projection with an error naming
//!   the event; it is never skipped. Connection trouble is retried instead.

use crate::checkpoint;
use crate::projection::{ApplyError, Projection};
use sqlx::postgres::PgListener;
use sqlx::{Connection, PgConnection, PgPool};
use std::sync::Arc;
use std::time::Duration;
use store::log::{self, LogPosition, LoggedEvent};
use tokio::sync::watch;

/// How a runner reads and waits.
#[derive(Debug, Clone, Copy)]
pub struct RunnerOptions {
    /// The most events per transaction (see [`BatchSizes`]).
    pub batch_size: i64,
    /// Longest wait between two looks at the log when no notification arrives.
    pub poll_interval: Duration,
}

/// The default most events per transaction, of runners and of rebuilds. Each transaction has
/// fixed work of its own (reading the rows its events touch, planning its statements,
/// committing); rebuilding a million events, 50,000 per transaction was 13 to 26% faster than
/// 5,000, and 200,000 slower again, each read model waiting on long reads of the log.
pub const BATCH_SIZE: i64 = 50_000;

/// The first batch of a runner that may be behind.
const FIRST_BATCH: i64 = 1000;

impl Default for RunnerOptions {
    fn default() -> Self {
        Self {
            batch_size: BATCH_SIZE,
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// The sizes of successive batches: a runner keeping up reads a few events at a time whatever
/// the limit; one that finds more starts at [`FIRST_BATCH`], so the first events of a burst
/// are visible soon, and doubles while batches come back full, up to the limit.
struct BatchSizes {
    next: i64,
    limit: i64,
}

impl BatchSizes {
    fn new(limit: i64) -> Self {
        Self {
            next: FIRST_BATCH.min(limit),
            limit,
        }
    }

    /// Whether the batch just applied (which read `read` events) was full; sizes the next.
    fn full(&mut self, read: usize) -> bool {
        let full = read as i64 >= self.next;
        self.next = if full {
            (self.next * 2).min(self.limit)
        } else {
            FIRST_BATCH.min(self.limit)
        };
        full
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(
        "projection {projection} stopped at event {aggregate_type}/{aggregate_id}#{sequence} \
         ({event_type}, global position {}): {reason}", position.global_position
    )]
    Poison {
        projection: String,
        position: LogPosition,
        event_type: String,
        aggregate_type: String,
        aggregate_id: String,
        sequence: i64,
        reason: String,
    },
    #[error("projection {0}: the checkpoint moved under this runner")]
    CheckpointMoved(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// What one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// Log events the batch went past: applied, or skipped as of types the projection does not
    /// read. Zero when the projection has nothing more to do.
    pub read: usize,
    pub position: LogPosition,
}

/// Applies, inside the caller's transaction, up to `limit` events after the checkpoint `name`
/// (only those before `before`, when given) and advances it. The caller commits (or not).
pub(crate) async fn apply_pending(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    name: &str,
    limit: i64,
    before: Option<LogPosition>,
) -> Result<Batch, RunnerError> {
    let from = begin_batch(conn, name).await?;
    let mut skimmed = log::read_of_types(&mut *conn, from, limit, projection.reads()).await?;
    if let Some(before) = before {
        skimmed.events.retain(|e| e.position < before);
        skimmed.last = skimmed.events.last().map(|e| e.position);
        skimmed.read = skimmed.events.len();
    }
    let log::Skimmed { events, read, last } = skimmed;
    // The last event read may be of a type the projection skips: the checkpoint goes past it.
    let Some(last) = last else {
        return Ok(Batch {
            read: 0,
            position: from,
        });
    };
    apply_read(conn, projection, name, from, &events, last).await?;
    Ok(Batch {
        read,
        position: last,
    })
}

/// Prepares the caller's transaction for a batch and locks the checkpoint `name`; returns where
/// it stands.
pub(crate) async fn begin_batch(
    conn: &mut PgConnection,
    name: &str,
) -> Result<LogPosition, RunnerError> {
    // A batch's statements look up, insert and update the rows of the batch's keys, some
    // thousands, in tables that may hold millions. The planner misjudges them in two ways,
    // both turning a rebuild quadratic: a connection keeps a prepared statement's generic plan
    // once chosen, and a plan chosen while a table was nearly empty keeps scanning it whole as a
    // rebuild fills it; and a table filled since its last ANALYZE looks a fraction of its size,
    // so a lookup of a thousand keys is planned as a sequential scan (hashed or filtered) of
    // the whole table instead of a thousand index probes. So every execution is planned for
    // the tables as they are now, and with index probes wherever an index serves. (Those
    // switches price the other plans out, so high that JIT compilation and parallel workers
    // would start for every statement: they are off too.)
    sqlx::query(
        "SELECT set_config('plan_cache_mode', 'force_custom_plan', true),
                set_config('enable_seqscan', 'off', true),
                set_config('enable_hashjoin', 'off', true),
                set_config('enable_mergejoin', 'off', true),
                set_config('jit', 'off', true),
                set_config('max_parallel_workers_per_gather', '0', true)",
    )
    .execute(&mut *conn)
    .await?;
    Ok(checkpoint::lock(conn, name).await?)
}

/// Applies the events of `read` (events read from the log after `from` up to `last`) of the
/// types the projection reads, and moves the checkpoint `name` from `from` to `last`, inside the
/// caller's transaction, whose checkpoint lock [`begin_batch`] took.
pub(crate) async fn apply_read(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    name: &str,
    from: LogPosition,
    read: &[LoggedEvent],
    last: LogPosition,
) -> Result<(), RunnerError> {
    let events = events_of(projection, read);
    let applied = if events.is_empty() {
        Ok(())
    } else {
        projection.apply_batch(conn, &events).await
    };
    match applied {
        Ok(()) => {}
        Err((_, ApplyError::Database(e))) if e.as_database_error().is_none() => {
            return Err(e.into())
        }
        Err((index, e)) => {
            let event = events[index.min(events.len() - 1)];
            return Err(RunnerError::Poison {
                projection: projection.name().to_string(),
                position: event.position,
                event_type: event.event_type.clone(),
                aggregate_type: event.aggregate_type.clone(),
                aggregate_id: event.aggregate_id.clone(),
                sequence: event.sequence,
                reason: e.to_string(),
            });
        }
    }
    if !checkpoint::advance(conn, name, from, last).await? {
        return Err(RunnerError::CheckpointMoved(name.to_string()));
    }
    Ok(())
}

/// The events of `read` of the types the projection reads.
pub(crate) fn events_of<'a>(
    projection: &dyn Projection,
    read: &'a [LoggedEvent],
) -> Vec<&'a LoggedEvent> {
    match projection.reads() {
        None => read.iter().collect(),
        Some(types) => read
            .iter()
            .filter(|e| types.contains(&e.aggregate_type.as_str()))
            .collect(),
    }
}

/// Points the transaction's unqualified table names at `schema` first (a rebuild's fresh tables).
pub(crate) async fn use_schema(conn: &mut PgConnection, schema: &str) -> Result<(), sqlx::Error> {
    debug_assert!(schema.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    sqlx::query(&format!("SET LOCAL search_path TO {schema}, public"))
        .execute(conn)
        .await?;
    Ok(())
}

/// One batch in one transaction. On a poison event, the events before it are applied and
/// committed, the error is recorded on the checkpoint, and the error is returned: the
/// projection stands exactly before the event it cannot apply.
pub async fn run_batch(
    pool: &PgPool,
    projection: &dyn Projection,
    name: &str,
    schema: Option<&str>,
    limit: i64,
) -> Result<Batch, RunnerError> {
    let mut tx = pool.begin().await?;
    if let Some(schema) = schema {
        use_schema(&mut tx, schema).await?;
    }
    match apply_pending(&mut tx, projection, name, limit, None).await {
        Ok(batch) => {
            tx.commit().await?;
            Ok(batch)
        }
        Err(err) => {
            tx.rollback().await?;
            if let RunnerError::Poison { position, .. } = &err {
                let mut tx = pool.begin().await?;
                if let Some(schema) = schema {
                    use_schema(&mut tx, schema).await?;
                }
                apply_pending(&mut tx, projection, name, limit, Some(*position)).await?;
                checkpoint::record_error(&mut tx, name, &err.to_string()).await?;
                tx.commit().await?;
                tracing::error!(error = %err, "projection stopped");
            }
            Err(err)
        }
    }
}

/// Applies batches until the log has nothing more; returns the position reached.
pub async fn catch_up(
    pool: &PgPool,
    projection: &dyn Projection,
    options: RunnerOptions,
) -> Result<LogPosition, RunnerError> {
    let mut sizes = BatchSizes::new(options.batch_size);
    loop {
        let batch = run_batch(pool, projection, projection.name(), None, sizes.next).await?;
        if batch.read == 0 {
            return Ok(batch.position);
        }
        sizes.full(batch.read);
    }
}

/// The advisory-lock key of a projection's leadership.
const LOCK_SQL: &str = "SELECT pg_try_advisory_lock(hashtextextended('projection:' || $1, 0))";

/// Runs `projection` until `shutdown` turns true: stands by until it holds the projection's
/// lock, then keeps the read model up to date. Returns the poison error that stopped it.
pub async fn run(
    pool: PgPool,
    projection: Arc<dyn Projection>,
    options: RunnerOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), RunnerError> {
    let name = projection.name();
    'elect: loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let mut leader = match PgConnection::connect_with(&pool.connect_options()).await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(projection = name, error = %e, "cannot connect; retrying");
                wait(&mut shutdown, options.poll_interval).await;
                continue;
            }
        };
        loop {
            let held: Result<bool, _> = sqlx::query_scalar(LOCK_SQL)
                .bind(name)
                .fetch_one(&mut leader)
                .await;
            match held {
                Ok(true) => break,
                Ok(false) => {}
                Err(_) => continue 'elect,
            }
            if wait(&mut shutdown, options.poll_interval).await {
                return Ok(());
            }
        }
        tracing::info!(projection = name, "runner is the leader");
        let mut listener = listen(&pool).await;
        let mut retry = Duration::from_millis(100);
        let mut sizes = BatchSizes::new(options.batch_size);
        loop {
            if *shutdown.borrow() {
                let _ = leader.close().await;
                return Ok(());
            }
            match run_batch(&pool, projection.as_ref(), name, None, sizes.next).await {
                Ok(batch) => {
                    if sizes.full(batch.read) {
                        continue;
                    }
                    retry = Duration::from_millis(100);
                    match behind_horizon(&mut leader, batch.position).await {
                        // Committed events wait behind an older transaction still in flight:
                        // their notification has come and gone, so look again shortly.
                        Ok(true) => {
                            if wait(&mut shutdown, HORIZON_RECHECK.min(options.poll_interval)).await
                            {
                                return Ok(());
                            }
                        }
                        Ok(false) => {
                            idle(&mut listener, &mut shutdown, options.poll_interval).await
                        }
                        Err(_) => {
                            tracing::warn!(
                                projection = name,
                                "lost the leader connection; standing for election again"
                            );
                            continue 'elect;
                        }
                    }
                }
                Err(err @ RunnerError::Poison { .. }) => {
                    let _ = leader.close().await;
                    return Err(err);
                }
                Err(err) => {
                    tracing::warn!(projection = name, error = %err, "batch failed; retrying");
                    if wait(&mut shutdown, retry).await {
                        return Ok(());
                    }
                    retry = (retry * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

/// How soon a runner looks again when committed events wait behind the transaction horizon.
const HORIZON_RECHECK: Duration = Duration::from_millis(20);

/// Whether events after `position` are committed but not yet safe to read. Runs on the leader
/// connection, so it doubles as the check that the leadership is still held.
async fn behind_horizon(
    leader: &mut PgConnection,
    position: LogPosition,
) -> Result<bool, sqlx::Error> {
    // Not `SELECT EXISTS (...)`: PostgreSQL drops an EXISTS subquery's ORDER BY and LIMIT and
    // plans it as a sequential scan expected to stop early, but the events after `position` are
    // the newest, at the end of the table, so every idle runner read the whole table. Ordered
    // and limited, the query walks the log's index from `position`.
    let next: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM events
          WHERE (transaction_id, global_position) > ($1::bigint::text::xid8, $2)
          ORDER BY transaction_id, global_position
          LIMIT 1",
    )
    .bind(position.transaction_id)
    .bind(position.global_position)
    .fetch_optional(leader)
    .await?;
    Ok(next.is_some())
}

async fn listen(pool: &PgPool) -> Option<PgListener> {
    let mut listener = PgListener::connect_with(pool).await.ok()?;
    listener.listen("events").await.ok()?;
    Some(listener)
}

/// Waits for a notification, the poll interval or shutdown, whichever comes first.
async fn idle(
    listener: &mut Option<PgListener>,
    shutdown: &mut watch::Receiver<bool>,
    poll: Duration,
) {
    match listener {
        Some(l) => {
            tokio::select! {
                received = l.recv() => {
                    if received.is_err() {
                        *listener = None;
                    }
                }
                () = tokio::time::sleep(poll) => {}
                _ = shutdown.changed() => {}
            }
        }
        None => {
            wait(shutdown, poll).await;
        }
    }
}

/// Sleeps for `duration` unless shutdown comes first; true when shutting down.
/// A dropped sender counts as shutdown.
async fn wait(shutdown: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(duration) => {}
        changed = shutdown.changed() => {
            if changed.is_err() {
                return true;
            }
        }
    }
    *shutdown.borrow()
}

/// Starts a runner for every read model ([`crate::read_models::all`]) with the default options;
/// each ends when `shutdown` turns true, or logs the poison error that stopped it.
pub fn spawn_all(
    pool: &PgPool,
    shutdown: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    crate::read_models::all()
        .into_iter()
        .map(|projection| {
            let name = projection.name();
            let runner = run(
                pool.clone(),
                projection,
                RunnerOptions::default(),
                shutdown.clone(),
            );
            tokio::spawn(async move {
                if let Err(e) = runner.await {
                    tracing::error!(projection = name, error = %e, "projection runner stopped");
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{BatchSizes, FIRST_BATCH};

    #[test]
    fn batches_grow_while_full_up_to_the_limit_and_start_over_when_short() {
        let mut sizes = BatchSizes::new(5000);
        assert_eq!(sizes.next, FIRST_BATCH);
        let mut seen = Vec::new();
        for _ in 0..4 {
            let size = sizes.next;
            assert!(sizes.full(size as usize));
            seen.push(sizes.next);
        }
        assert_eq!(seen, [2000, 4000, 5000, 5000]);
        assert!(!sizes.full(4999));
        assert_eq!(sizes.next, FIRST_BATCH);
        assert!(!sizes.full(0));
        assert_eq!(sizes.next, FIRST_BATCH);
    }

    #[test]
    fn a_limit_below_the_first_batch_is_kept() {
        let mut sizes = BatchSizes::new(7);
        assert_eq!(sizes.next, 7);
        assert!(sizes.full(7));
        assert_eq!(sizes.next, 7);
        assert!(!sizes.full(3));
        assert_eq!(sizes.next, 7);
    }
}
