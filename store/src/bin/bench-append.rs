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
use sqlx::{Connection, PgConnection};
use std::sync::Arc;
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
    store::bench::create_raw_table(&pool).await?;

    println!(
        "{} commands per level; each command appends one event",
        args.commands
    );
    println!(
        "{:>11} {:>14} {:>12} {:>12} {:>7}",
        "concurrency", "raw inserts/s", "commands/s", "events/s", "ratio"
    );
    for &level in &args.concurrency {
        let raw = store::bench::raw_insert_rate(&pool, args.commands, level).await?;
        let store = Arc::new(EventStore::new(pool.clone()));
        let commands =
            store::bench::rate(args.commands, level, move |_| command(store.clone())).await?;
        println!(
            "{level:>11} {raw:>14.0} {commands:>12.0} {commands:>12.0} {:>7.2}",
            commands / raw
        );
    }
    pool.close().await;
    Ok(())
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
