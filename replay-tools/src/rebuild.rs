//! Rebuilding read models with the projections' own rebuild (in place, or into fresh tables),
//! with a progress bar. In place, the read models named are rebuilt together, with one read of
//! the log; into fresh tables, one after the other.
//!
//! The rebuild runs as it does in the service (`projections::rebuild`); beside it, this module
//! watches how far it has come and draws a bar on standard error: events applied, events/s and
//! time left. Into fresh tables it follows the checkpoint the rebuild advances (which stands
//! still while a read model folds the log in memory, and jumps when the fold is written); in
//! place, the one read of the log (read models that fold it write their tables only at its
//! end). Progress is counted in global positions, which the log allocates one per event, so it
//! is the event count up to the few positions that rolled-back transactions leave unused.

use crate::cli::RebuildArgs;
use crate::error::ToolError;
use indicatif::{ProgressBar, ProgressStyle};
use projections::rebuild;
use projections::runner::{RunnerError, RunnerOptions};
use projections::Projection;
use sqlx::PgPool;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::log::LogPosition;
use tokio::sync::watch;

pub async fn run(pool: &PgPool, args: &RebuildArgs) -> Result<ExitCode, ToolError> {
    let chosen = choose(&args.projections, args.all)?;
    let options = RunnerOptions {
        batch_size: args.batch_size,
        ..RunnerOptions::default()
    };
    settle(pool).await?;
    if !args.fresh_tables {
        return together(pool, &chosen, options).await;
    }
    for projection in chosen {
        let started = Instant::now();
        let (first, head) = span(pool).await?;
        let checkpoint = [format!("{}@rebuild", projection.name())];
        let work = rebuild::into_fresh_tables(pool, projection.as_ref(), options);
        let follow = Follow::Checkpoints(&checkpoint);
        let reached = with_progress(pool, projection.name(), follow, (first, head), work).await?;
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{}: rebuilt up to global position {} ({} events) in {seconds:.1} s",
            projection.name(),
            reached.global_position,
            (head - first).max(0),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Rebuilds read models in place with one read of the log ([`rebuild::in_place_together`]);
/// the bar follows the read.
async fn together(
    pool: &PgPool,
    chosen: &[Arc<dyn Projection>],
    options: RunnerOptions,
) -> Result<ExitCode, ToolError> {
    let started = Instant::now();
    let (first, head) = span(pool).await?;
    let names: Vec<String> = chosen.iter().map(|p| p.name().to_string()).collect();
    let label = match chosen {
        [one] => one.name().to_string(),
        _ => format!("{} models", chosen.len()),
    };
    let (progress, read) = watch::channel(LogPosition::default());
    let work = rebuild::in_place_together(pool, chosen, options, Some(&progress));
    let reached = with_progress(pool, &label, Follow::Read(read), (first, head), work).await?;
    let seconds = started.elapsed().as_secs_f64();
    let events = (head - first).max(0);
    if let ([name], [position]) = (names.as_slice(), reached.as_slice()) {
        println!(
            "{name}: rebuilt up to global position {} ({events} events) in {seconds:.1} s",
            position.global_position
        );
        return Ok(ExitCode::SUCCESS);
    }
    for (name, position) in names.iter().zip(reached) {
        println!(
            "{name}: rebuilt up to global position {}",
            position.global_position
        );
    }
    println!(
        "{} read models rebuilt together ({events} events) in {seconds:.1} s",
        names.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Where a bar reads how far a rebuild has come.
enum Follow<'a> {
    /// The slowest of these checkpoints.
    Checkpoints(&'a [String]),
    /// The position up to which the one read of the log has handed it to every read model.
    Read(watch::Receiver<LogPosition>),
}

/// Runs `work` while a bar named `label` shows how far it has come (`follow`) between the
/// global positions `first` and `head`.
async fn with_progress<T>(
    pool: &PgPool,
    label: &str,
    follow: Follow<'_>,
    (first, head): (i64, i64),
    work: impl std::future::Future<Output = Result<T, RunnerError>>,
) -> Result<T, ToolError> {
    let bar = bar(label, (head - first).max(0) as u64);
    tokio::pin!(work);
    let outcome = loop {
        tokio::select! {
            outcome = &mut work => break outcome,
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                let position = match &follow {
                    Follow::Checkpoints(names) => {
                        slowest_checkpoint(pool, names).await.ok().flatten()
                    }
                    Follow::Read(read) => Some(read.borrow().global_position),
                };
                if let Some(position) = position {
                    bar.set_position((position - first).clamp(0, head - first) as u64);
                }
            }
        }
    };
    match outcome {
        Ok(outcome) => {
            bar.finish_and_clear();
            Ok(outcome)
        }
        Err(err) => {
            bar.abandon();
            Err(ToolError::from(err))
        }
    }
}

/// The read models named, in the order of a full rebuild; an unknown name is refused before
/// anything is rebuilt.
pub fn choose(names: &[String], all: bool) -> Result<Vec<Arc<dyn Projection>>, ToolError> {
    let every = projections::read_models::all();
    if all {
        return Ok(every);
    }
    let known: Vec<&str> = every.iter().map(|p| p.name()).collect();
    if let Some(unknown) = names.iter().find(|n| !known.contains(&n.as_str())) {
        return Err(ToolError::bad_input(format!(
            "unknown read model '{unknown}'\n  known read models: {}",
            known.join(", ")
        )));
    }
    Ok(every
        .into_iter()
        .filter(|p| names.iter().any(|n| n == p.name()))
        .collect())
}

/// Longest wait for committed events to become readable before a rebuild starts.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);

/// Waits (bounded) until every event committed so far is readable by the log reader, so the
/// rebuild includes it. The reader's horizon is cluster-wide: a transaction still open anywhere
/// on the server (another database's included) holds back events committed after it began,
/// such as those an import has just written.
async fn settle(pool: &PgPool) -> Result<(), ToolError> {
    let deadline = Instant::now() + SETTLE_LIMIT;
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events
              WHERE transaction_id >= pg_snapshot_xmin(pg_current_snapshot())",
        )
        .fetch_one(pool)
        .await?;
        if waiting == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            eprintln!(
                "note: {waiting} committed event(s) wait behind a transaction still open on the \
                 server; the rebuild stops before them and the service's runners apply them later"
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The global positions before the first event and of the last one a reader may take now.
async fn span(pool: &PgPool) -> Result<(i64, i64), ToolError> {
    let (first, head): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT min(global_position) - 1, max(global_position) FROM events
          WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())",
    )
    .fetch_one(pool)
    .await?;
    Ok((first.unwrap_or(0), head.unwrap_or(0)))
}

/// The global position of the checkpoint furthest behind among `names`.
async fn slowest_checkpoint(pool: &PgPool, names: &[String]) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT min(global_position) FROM projection_checkpoints WHERE name = ANY($1)",
    )
    .bind(names)
    .fetch_one(pool)
    .await
}

fn bar(name: &str, length: u64) -> ProgressBar {
    let bar = ProgressBar::new(length);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>12} [{bar:30}] {human_pos}/{human_len} events  {per_sec}  {eta} left",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    bar.set_prefix(name.to_string());
    bar
}
