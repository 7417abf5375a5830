//! bench-projections: how fast the read models rebuild, and how far behind the log they run.
//!
//! In a scratch database it creates and drops itself:
//! 1. writes a log of N events of a realistic mix (customers and catalogs, course content,
//!    learners linked, consents, enrollments, grades and completions), straight into `events`;
//! 2. reads the whole events table once with `COPY ... TO STDOUT` (the raw read rate);
//! 3. rebuilds every read model from zero, one after the other, and prints events/s per
//!    projection and in all, then all of them at once, and each rate's ratio to the raw read
//!    rate;
//! 4. runs every projection's runner while a writer appends events at a steady rate, and prints
//!    the lag from commit to read-model visibility (p50, p99).

use clap::Parser;
use projections::bench_log::{insert, Generator};
use projections::rebuild;
use projections::runner::{self, RunnerOptions};
use projections::Projection;
use sqlx::{Connection, PgConnection, PgPool};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::log::LogPosition;

/// The allocator of the service and `replay-tools`: rebuilds and runners allocate the events
/// of a batch on one thread and free them on another, where the system allocator spent much of
/// a rebuild on its own locks (README, Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Measure read-model rebuild speed against the raw read rate, and the projection lag.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// A PostgreSQL URL with the right to create databases; the benchmark creates a scratch
    /// database beside the one named here and drops it at the end.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Events in the generated log.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Events per second the writer appends while the lag is measured.
    #[arg(long, default_value_t = 2000)]
    rate: usize,
    /// How long the lag is measured, in seconds (0 skips it).
    #[arg(long, default_value_t = 20)]
    lag_seconds: u64,
    /// Seconds of writing at the same rate before the lag is measured, while the runners
    /// start (connect, take their locks, listen).
    #[arg(long, default_value_t = 3)]
    warmup_seconds: u64,
    /// Also rebuild each projection reading the whole log (as if it named no aggregate types),
    /// to show what reading only its types saves.
    #[arg(long)]
    compare_unfiltered: bool,
    /// Rebuild only these read models (names separated by commas), to study one; the lag is
    /// still measured with every runner (the others are built first, with one read).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Keep the scratch database at the end (its name is printed), to study it.
    #[arg(long)]
    keep_database: bool,
    /// The most events per transaction in the rebuilds (the default is the runners' and
    /// `replay-tools rebuild`'s).
    #[arg(long, default_value_t = runner::BATCH_SIZE)]
    batch_size: i64,
}

/// Rebuilds a projection in place; returns the seconds it took.
async fn timed_rebuild(
    pool: &PgPool,
    projection: &dyn Projection,
    options: RunnerOptions,
) -> Result<f64, Box<dyn std::error::Error>> {
    let started = Instant::now();
    rebuild::in_place(pool, projection, options).await?;
    Ok(started.elapsed().as_secs_f64())
}

/// A projection as it would run without naming the aggregate types it reads.
struct Unfiltered<'a>(&'a dyn Projection);

#[async_trait::async_trait]
impl Projection for Unfiltered<'_> {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn tables(&self) -> &'static [&'static str] {
        self.0.tables()
    }

    fn tables_emptied(&self) {
        self.0.tables_emptied();
    }

    async fn apply(
        &self,
        conn: &mut sqlx::PgConnection,
        event: &store::log::LoggedEvent,
    ) -> Result<(), projections::ApplyError> {
        self.0.apply(conn, event).await
    }

    async fn apply_batch(
        &self,
        conn: &mut sqlx::PgConnection,
        events: &[&store::log::LoggedEvent],
    ) -> Result<(), (usize, projections::ApplyError)> {
        self.0.apply_batch(conn, events).await
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let scratch = format!("bench_projections_{}", std::process::id());
    let mut admin = PgConnection::connect(&args.database_url).await?;
    sqlx::query(&format!("CREATE DATABASE {scratch}"))
        .execute(&mut admin)
        .await?;
    let outcome = run(&args, &scratch).await;
    if args.keep_database {
        println!("kept the scratch database {scratch}");
        return outcome;
    }
    sqlx::query(&format!("DROP DATABASE IF EXISTS {scratch} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    outcome
}

async fn run(args: &Args, scratch: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut all = projections::read_models::all();
    if !args.only.is_empty() {
        all.retain(|p| args.only.iter().any(|name| name == p.name()));
        if all.is_empty() {
            return Err(format!("--only names no read model: {}", args.only.join(",")).into());
        }
    }
    let url = store::db::with_database(&args.database_url, scratch);
    let pool = store::db::connect(&url, 16).await?;
    store::db::migrate(&pool).await?;

    let started = Instant::now();
    let mut generator = Generator::new();
    let mut written = 0;
    while written < args.events {
        let rows = generator.next_chunk(5000.min(args.events - written));
        written += rows.len();
        insert(&pool, &rows).await?;
    }
    println!(
        "generated {written} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let raw = raw_read_rate(&pool).await?;
    println!("raw read (COPY to nowhere): {raw:.0} events/s");

    let options = RunnerOptions {
        batch_size: args.batch_size,
        poll_interval: Duration::from_millis(100),
    };
    println!(
        "{:>12} {:>10} {:>12} {:>7}",
        "projection", "seconds", "events/s", "ratio"
    );
    let mut total = 0.0;
    for projection in &all {
        let seconds = timed_rebuild(&pool, projection.as_ref(), options).await?;
        total += seconds;
        let rate = written as f64 / seconds;
        println!(
            "{:>12} {seconds:>10.1} {rate:>12.0} {:>7.2}",
            projection.name(),
            rate / raw
        );
        if args.compare_unfiltered && projection.reads().is_some() {
            // Again reading every event, then once more reading its types: the first rebuild
            // ran on tables the planner had no statistics for, the later ones did.
            let unfiltered =
                timed_rebuild(&pool, &Unfiltered(projection.as_ref()), options).await?;
            let again = timed_rebuild(&pool, projection.as_ref(), options).await?;
            for (seconds, what) in [(unfiltered, "every event"), (again, "its types, again")] {
                let rate = written as f64 / seconds;
                println!(
                    "{:>12} {seconds:>10.1} {rate:>12.0} {:>7.2}  (reading {what})",
                    "",
                    rate / raw
                );
            }
        }
    }
    let rate = (written * all.len()) as f64 / total;
    println!(
        "{:>12} {total:>10.1} {rate:>12.0} {:>7.2}  (events x projections / s)",
        "all",
        rate / raw
    );
    let log_rate = |label: &str, started: Instant, what: &str| {
        let seconds = started.elapsed().as_secs_f64();
        let rate = written as f64 / seconds;
        println!(
            "{label:>12} {seconds:>10.1} {rate:>12.0} {:>7.2}  ({what}: log events / s)",
            rate / raw
        );
    };
    // The read models rebuilt together, as a service started on an empty database builds them
    // (every runner at once): the whole log through all of them.
    let started = Instant::now();
    futures_util::future::try_join_all(
        all.iter()
            .map(|projection| rebuild::in_place(&pool, projection.as_ref(), options)),
    )
    .await?;
    log_rate("together", started, "all at once");
    // The same, reading the log once for all of them, as `replay-tools rebuild --all` does.
    let started = Instant::now();
    rebuild::in_place_together(&pool, &all, options, None).await?;
    log_rate("one read", started, "all at once, one read");

    if args.lag_seconds > 0 {
        lag(&pool, &mut generator, args).await?;
    }
    pool.close().await;
    Ok(())
}

async fn raw_read_rate(pool: &PgPool) -> Result<f64, Box<dyn std::error::Error>> {
    use futures_util::TryStreamExt;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await?;
    let mut conn = pool.acquire().await?;
    let started = Instant::now();
    let mut stream = conn
        .copy_out_raw("COPY (SELECT * FROM events) TO STDOUT")
        .await?;
    let mut bytes = 0usize;
    while let Some(chunk) = stream.try_next().await? {
        bytes += chunk.len();
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "read {count} events ({:.0} MB) in {seconds:.2} s",
        bytes as f64 / 1e6
    );
    Ok(count as f64 / seconds)
}

/// Appends `rate` events per second in ten chunks a second while every runner runs, and
/// measures each chunk's time from commit until every projection's checkpoint passed it;
/// chunks written during the warm-up are not measured.
async fn lag(
    pool: &PgPool,
    generator: &mut Generator,
    args: &Args,
) -> Result<(), Box<dyn std::error::Error>> {
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let options = RunnerOptions::default();
    let all = projections::read_models::all();
    // The read models `--only` left out were never built: build them first (one read of the
    // log), or the lag would measure their catch-up from the first event.
    let left_out: Vec<_> = all
        .iter()
        .filter(|p| !args.only.is_empty() && !args.only.iter().any(|name| name == p.name()))
        .cloned()
        .collect();
    if !left_out.is_empty() {
        rebuild::in_place_together(pool, &left_out, options, None).await?;
    }
    let mut runners = Vec::new();
    for projection in &all {
        runners.push(tokio::spawn(runner::run(
            pool.clone(),
            Arc::clone(projection),
            options,
            shutdown.clone(),
        )));
    }
    let names: Vec<&str> = all.iter().map(|p| p.name()).collect();
    let chunk = (args.rate / 10).max(1);
    let mut pending: Vec<(LogPosition, Instant)> = Vec::new();
    let mut lags = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let measured_from = Instant::now() + Duration::from_secs(args.warmup_seconds);
    let deadline = measured_from + Duration::from_secs(args.lag_seconds);
    while Instant::now() < deadline || !pending.is_empty() {
        tokio::select! {
            _ = tick.tick(), if Instant::now() < deadline => {
                let rows = generator.next_chunk(chunk);
                let position = insert(pool, &rows).await?;
                pending.push((position, Instant::now()));
            }
            () = tokio::time::sleep(Duration::from_millis(2)) => {
                let Some(reached) = slowest_checkpoint(pool, &names).await? else { continue };
                let now = Instant::now();
                pending.retain(|(position, committed)| {
                    if *position <= reached {
                        if *committed >= measured_from {
                            lags.push(now.duration_since(*committed));
                        }
                        false
                    } else {
                        true
                    }
                });
            }
        }
    }
    stop.send(true)?;
    for runner in runners {
        runner.await??;
    }
    lags.sort();
    let at = |q: f64| lags[((lags.len() as f64 * q) as usize).min(lags.len() - 1)];
    println!(
        "lag under {} events/s for {} s after {} s of warm-up ({} chunks): \
         p50 {} ms, p99 {} ms, max {} ms",
        args.rate,
        args.lag_seconds,
        args.warmup_seconds,
        lags.len(),
        at(0.5).as_millis(),
        at(0.99).as_millis(),
        lags.last().map_or(0, Duration::as_millis)
    );
    Ok(())
}

/// The checkpoint of the projection furthest behind.
async fn slowest_checkpoint(
    pool: &PgPool,
    names: &[&str],
) -> Result<Option<LogPosition>, sqlx::Error> {
    let reached: Option<(i64, i64)> = sqlx::query_as(
        "SELECT transaction_id::text::bigint, global_position FROM projection_checkpoints
          WHERE name = ANY($1) ORDER BY transaction_id, global_position LIMIT 1",
    )
    .bind(names)
    .fetch_optional(pool)
    .await?;
    Ok(reached.map(|(tx, pos)| LogPosition {
        transaction_id: tx,
        global_position: pos,
    }))
}
