//! bench-consent-history: how fast `consent-history` answers for one learner in a large log.
//!
//! In a scratch database it creates and drops itself:
//! 1. writes a log of N events with `projections::bench_log` (the generator of
//!    bench-projections), and in the middle of it one learner's history: grants, a decline and
//!    revocations on three courses;
//! 2. times the consent-history query for that learner (the same function the CLI calls),
//!    repeated, with the learner index and then without it (the baseline: every consent event
//!    walked on the primary key), and prints p50, p99 and the ratio;
//! 3. times the whole CLI (`replay-tools consent-history --learner-id ...`, process start and
//!    connection included) when the binary sits beside this one;
//! 4. with `--verify`, times verify's log checks (hash chains, sequences, positions, the log
//!    reader and payloads) over the whole log.

use clap::Parser;
use cqrs_es::DomainEvent;
use domain::consent::{ConsentEvent, ConsentSource, ConsentSubject};
use domain::ids::{CourseKey, CustomerId, LearnerId};
use projections::bench_log::{insert, Generator, Row};
use replay_tools::consent_history::{history, Filter};
use sqlx::{Connection, PgConnection, PgPool};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Time consent-history for one learner among N events.
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
    /// Timed repetitions of the query.
    #[arg(long, default_value_t = 200)]
    repeat: usize,
    /// Also time verify's log checks over the whole log.
    #[arg(long)]
    verify: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let scratch = format!("bench_consent_history_{}", std::process::id());
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
    let pool = store::db::connect(&url, 4).await?;
    store::db::migrate(&pool).await?;

    let started = Instant::now();
    let learner = LearnerId(Uuid::new_v4());
    let mut generator = Generator::new();
    let mut written = 0;
    let mut history_written = false;
    while written < args.events {
        if !history_written && written >= args.events / 2 {
            let rows = learner_history(learner);
            written += rows.len();
            insert(&pool, &rows).await?;
            history_written = true;
            continue;
        }
        let rows = generator.next_chunk(5000.min(args.events - written));
        written += rows.len();
        insert(&pool, &rows).await?;
    }
    if !history_written {
        written += learner_history(learner).len();
        insert(&pool, &learner_history(learner)).await?;
    }
    sqlx::query("ANALYZE events").execute(&pool).await?;
    let consent_events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'consent'")
            .fetch_one(&pool)
            .await?;
    println!(
        "generated {written} events ({consent_events} consent events) in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let filter = Filter {
        learner_id: Some(learner.0),
        ..Filter::default()
    };
    let indexed = time(&pool, &filter, args.repeat).await?;
    report("with events_consent_learner", &indexed);

    sqlx::query("DROP INDEX events_consent_learner")
        .execute(&pool)
        .await?;
    let baseline = time(&pool, &filter, args.repeat.min(20)).await?;
    report("without the index (baseline)", &baseline);
    println!(
        "ratio p50 baseline / indexed: {:.0}",
        baseline[baseline.len() / 2].as_secs_f64() / indexed[indexed.len() / 2].as_secs_f64()
    );
    sqlx::query(
        "CREATE INDEX events_consent_learner ON events ((payload -> event_type ->> 'learner_id'))
          WHERE aggregate_type = 'consent'",
    )
    .execute(&pool)
    .await?;

    let cli = std::env::current_exe()?.with_file_name("replay-tools");
    if cli.exists() {
        let learner = learner.0.to_string();
        let mut runs = Vec::new();
        for _ in 0..10 {
            let started = Instant::now();
            let output = std::process::Command::new(&cli)
                .args(["--database-url", &url, "consent-history", "--learner-id"])
                .arg(&learner)
                .output()?;
            runs.push(started.elapsed());
            if !output.status.success() {
                return Err(String::from_utf8_lossy(&output.stderr).into_owned().into());
            }
        }
        runs.sort();
        report("whole CLI run (process, connect, query, print)", &runs);
    } else {
        println!("(build replay-tools beside this binary to time the whole CLI run)");
    }
    if args.verify {
        let started = Instant::now();
        let problems = replay_tools::verify::check_log(&pool).await?;
        println!(
            "verify's log checks over {written} events: {:.1} s, {} problem(s)",
            started.elapsed().as_secs_f64(),
            problems.len()
        );
    }
    pool.close().await;
    Ok(())
}

/// Times `repeat` runs of the query; returns the durations sorted.
async fn time(
    pool: &PgPool,
    filter: &Filter,
    repeat: usize,
) -> Result<Vec<Duration>, Box<dyn std::error::Error>> {
    // One untimed run warms the cache and checks the answer.
    let entries = history(pool, filter).await?;
    if entries.len() != 6 {
        return Err(format!(
            "expected the learner's 6 consent events, got {}",
            entries.len()
        )
        .into());
    }
    let mut runs = Vec::with_capacity(repeat);
    for _ in 0..repeat.max(1) {
        let started = Instant::now();
        history(pool, filter).await?;
        runs.push(started.elapsed());
    }
    runs.sort();
    Ok(runs)
}

fn report(what: &str, runs: &[Duration]) {
    let at = |q: f64| runs[((runs.len() as f64 * q) as usize).min(runs.len() - 1)];
    println!(
        "{what}: {} runs, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        runs.len(),
        at(0.5).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
        runs.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    );
}

/// One learner's story at one customer: three courses, granted, declined, revoked, granted.
fn learner_history(learner: LearnerId) -> Vec<Row> {
    let customer = CustomerId(Uuid::new_v4());
    let course = |key: &str| ConsentSubject::Course(CourseKey(key.into()));
    let mut rows = Vec::new();
    let mut push = |subject: ConsentSubject, sequence: i64, event: ConsentEvent| {
        let stream = domain::consent::consent_stream_id(customer, learner, &subject);
        rows.push((
            "consent".to_string(),
            stream,
            sequence,
            event.event_type(),
            serde_json::to_value(&event).expect("events serialize"),
        ));
    };
    let source = ConsentSource::ConsentPage;
    for (key, story) in [
        ("Bench+One", vec!["grant", "revoke", "grant"]),
        ("Bench+Two", vec!["decline", "grant"]),
        ("Bench+Three", vec!["grant"]),
    ] {
        for (i, step) in story.into_iter().enumerate() {
            let (customer_id, learner_id, subject) = (customer, learner, course(key));
            let event = match step {
                "grant" => ConsentEvent::ConsentGranted {
                    customer_id,
                    learner_id,
                    subject: subject.clone(),
                    source,
                },
                "decline" => ConsentEvent::ConsentDeclined {
                    customer_id,
                    learner_id,
                    subject: subject.clone(),
                    source,
                },
                _ => ConsentEvent::ConsentRevoked {
                    customer_id,
                    learner_id,
                    subject: subject.clone(),
                    source,
                },
            };
            push(subject, i as i64 + 1, event);
        }
    }
    rows
}
