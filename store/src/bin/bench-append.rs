//! bench-append: how fast the event store takes commands, against the raw limit of the machine.
//!
//! In a scratch database it creates and drops itself, for each concurrency level it runs
//! (1) N one-row INSERT statements (each its own transaction) into a table shaped like
//! `events`, and (2) N commands through the event store, each on its own stream: load the
//! aggregate, let it validate and decide, append its event. It prints both rates and their
//! ratio. Both runs take turns on the same machine, so the ratio holds up on a noisy host
//! better than either figure alone.

use clap::Parser;
use domain::consent::{Action, Consent, ConsentCommand, ConsentSource, ConsentSubject};
use domain::ids::{CourseKey, CustomerId, LearnerId};
use sqlx::{Connection, PgConnection, PgPool};
use std::sync::Arc;
use std::time::Instant;
use store::{CommandMetadata, EventStore};
use uuid::Uuid;

/// Measure command throughput of the event store against raw single-row INSERTs.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// A PostgreSQL URL with the right to create databases; the benchmark creates a scratch
    /// database beside the one named here and drops it at the end.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Commands (and raw inserts) per concurrency level.
    #[arg(long, default_value_t = 5000)]
    commands: usize,
    /// Concurrency levels, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let scratch = format!("bench_append_{}", std::process::id());
    let mut admin = PgConnection::connect(&args.database_url).await?;
    sqlx::query(&format!("CREATE DATABASE {scratch}"))
        .execute(&mut admin)
        .await?;
    let outcome = run(&args, &scratch).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {scratch} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    outcome
}

async fn run(args: &Args, scratch: &str) -> Result<(), Box<dyn std::error::Error>> {
    let url = store::db::with_database(&args.database_url, scratch);
    let max = args.concurrency.iter().copied().max().unwrap_or(1) as u32;
    let pool = store::db::connect(&url, max + 2).await?;
    store::db::migrate(&pool).await?;
    sqlx::query("CREATE TABLE raw_events (LIKE events INCLUDING DEFAULTS INCLUDING INDEXES)")
        .execute(&pool)
        .await?;
    // The raw limit is a bare insert: no trigger fills the hash chain here (LIKE copies no
    // triggers), so the column may stay empty.
    sqlx::query("ALTER TABLE raw_events ALTER COLUMN hash DROP NOT NULL")
        .execute(&pool)
        .await?;
    let (payload, metadata) = sample_event();

    println!(
        "{} commands per level; each command appends one event",
        args.commands
    );
    println!(
        "{:>11} {:>14} {:>12} {:>12} {:>7}",
        "concurrency", "raw inserts/s", "commands/s", "events/s", "ratio"
    );
    for &level in &args.concurrency {
        let raw = rate(args.commands, level, {
            let (pool, payload, metadata) = (pool.clone(), payload.clone(), metadata.clone());
            move |_| raw_insert(pool.clone(), payload.clone(), metadata.clone())
        })
        .await?;
        let store = Arc::new(EventStore::new(pool.clone()));
        let commands = rate(args.commands, level, move |_| command(store.clone())).await?;
        println!(
            "{level:>11} {raw:>14.0} {commands:>12.0} {commands:>12.0} {:>7.2}",
            commands / raw
        );
    }
    pool.close().await;
    Ok(())
}

/// Runs `total` operations over `level` tasks and returns operations per second.
async fn rate<F, Fut>(total: usize, level: usize, op: F) -> Result<f64, Box<dyn std::error::Error>>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..level {
        let op = op.clone();
        let share = total / level + usize::from(worker < total % level);
        tasks.spawn(async move {
            for i in 0..share {
                op(i).await?;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

async fn raw_insert(
    pool: PgPool,
    payload: serde_json::Value,
    metadata: serde_json::Value,
) -> Result<(), String> {
    sqlx::query(
        "INSERT INTO raw_events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('consent', $1, 1, 'ConsentGranted', '1.0', $2, $3)",
    )
    .bind(Uuid::new_v4().to_string())
    .bind(payload)
    .bind(metadata)
    .execute(&pool)
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

async fn command(store: Arc<EventStore>) -> Result<(), String> {
    let command = ConsentCommand {
        customer_id: CustomerId(Uuid::new_v4()),
        learner_id: LearnerId(Uuid::new_v4()),
        subject: ConsentSubject::Course(CourseKey("edX+DemoX".into())),
        source: ConsentSource::ConsentPage,
        action: Action::Grant,
    };
    let id = domain::consent::consent_stream_id(
        command.customer_id,
        command.learner_id,
        &command.subject,
    );
    store
        .execute::<Consent>(&id, command, &(), &CommandMetadata::new("bench"))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A payload and metadata of the size a real consent grant has.
fn sample_event() -> (serde_json::Value, serde_json::Value) {
    let payload = serde_json::json!({"ConsentGranted": {
        "customer_id": Uuid::new_v4(), "learner_id": Uuid::new_v4(),
        "subject": {"course": "edX+DemoX"}, "source": "consent_page"}});
    let metadata = serde_json::json!({"actor": "bench", "correlation_id": Uuid::now_v7()});
    (payload, metadata)
}
