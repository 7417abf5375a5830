//! bench-projections: how fast the read models rebuild, and how far behind the log they run.
//!
//! In a scratch database it creates and drops itself:
//! 1. writes a log of N events of a realistic mix (customers and catalogs, course content,
//!    learners linked, consents, enrollments, grades and completions), straight into `events`;
//! 2. reads the whole events table once with `COPY ... TO STDOUT` (the raw read rate);
//! 3. rebuilds every read model from zero and prints events/s per projection and in all, and
//!    the ratio to the raw read rate;
//! 4. runs every projection's runner while a writer appends events at a steady rate, and prints
//!    the lag from commit to read-model visibility (p50, p99).

use chrono::Utc;
use clap::Parser;
use cqrs_es::DomainEvent;
use domain::completion::{CompletionEvent, GradeLabel, ProgressStatus};
use domain::consent::{ConsentEvent, ConsentSource, ConsentSubject};
use domain::content::{discovery, ContentEvent, ContentMetadata, ContentType};
use domain::course_mode::CourseMode;
use domain::customer::{ConsentEnforcement, ConsentPolicy, CustomerEvent};
use domain::enrollment::{EnrollmentEvent, EnrollmentSource};
use domain::ids::{CatalogId, CourseKey, CourseRunId, CustomerId, LearnerId};
use domain::membership::MembershipEvent;
use projections::rebuild;
use projections::runner::{self, RunnerOptions};
use sqlx::{Connection, PgConnection, PgPool};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::log::LogPosition;
use uuid::Uuid;

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
}

type Row = (String, String, i64, String, serde_json::Value);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let scratch = format!("bench_projections_{}", std::process::id());
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
        batch_size: 5000,
        poll_interval: Duration::from_millis(100),
    };
    let all = projections::read_models::all();
    let total_started = Instant::now();
    println!(
        "{:>12} {:>10} {:>12} {:>7}",
        "projection", "seconds", "events/s", "ratio"
    );
    for projection in &all {
        let started = Instant::now();
        rebuild::in_place(&pool, projection.as_ref(), options).await?;
        let seconds = started.elapsed().as_secs_f64();
        let rate = written as f64 / seconds;
        println!(
            "{:>12} {seconds:>10.1} {rate:>12.0} {:>7.2}",
            projection.name(),
            rate / raw
        );
    }
    let seconds = total_started.elapsed().as_secs_f64();
    let rate = (written * all.len()) as f64 / seconds;
    println!(
        "{:>12} {seconds:>10.1} {rate:>12.0} {:>7.2}  (events x projections / s)",
        "all",
        rate / raw
    );

    if args.lag_seconds > 0 {
        lag(&pool, &mut generator, args).await?;
    }
    pool.close().await;
    Ok(())
}

async fn insert(pool: &PgPool, rows: &[Row]) -> Result<LogPosition, sqlx::Error> {
    let (mut types, mut ids, mut sequences, mut event_types, mut payloads) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (aggregate_type, id, sequence, event_type, payload) in rows {
        types.push(aggregate_type.clone());
        ids.push(id.clone());
        sequences.push(*sequence);
        event_types.push(event_type.clone());
        payloads.push(payload.clone());
    }
    let (tx, pos): (i64, i64) = sqlx::query_as(
        "WITH inserted AS (
            INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
            SELECT t, i, s, e, '1.0', p, '{\"actor\": \"bench\"}'::jsonb
              FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::jsonb[]) AS u(t, i, s, e, p)
            RETURNING transaction_id, global_position)
         SELECT max(transaction_id::text::bigint), max(global_position) FROM inserted",
    )
    .bind(types)
    .bind(ids)
    .bind(sequences)
    .bind(event_types)
    .bind(payloads)
    .fetch_one(pool)
    .await?;
    // Wake the runners as the event store does after its commits.
    sqlx::query("SELECT pg_notify('events', '')")
        .execute(pool)
        .await?;
    Ok(LogPosition {
        transaction_id: tx,
        global_position: pos,
    })
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
/// measures each chunk's time from commit until every projection's checkpoint passed it.
async fn lag(
    pool: &PgPool,
    generator: &mut Generator,
    args: &Args,
) -> Result<(), Box<dyn std::error::Error>> {
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let options = RunnerOptions {
        batch_size: 1000,
        poll_interval: Duration::from_millis(500),
    };
    let all = projections::read_models::all();
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
    let deadline = Instant::now() + Duration::from_secs(args.lag_seconds);
    while Instant::now() < deadline || !pending.is_empty() {
        tokio::select! {
            _ = tick.tick(), if Instant::now() < deadline => {
                let rows = generator.next_chunk(chunk);
                let position = insert(pool, &rows).await?;
                pending.push((position, Instant::now()));
            }
            () = tokio::time::sleep(Duration::from_millis(2)) => {
                let reached: Option<(i64, i64)> = sqlx::query_as(
                    "SELECT transaction_id::text::bigint, global_position FROM projection_checkpoints
                      WHERE name = ANY($1) ORDER BY transaction_id, global_position LIMIT 1",
                )
                .bind(&names)
                .fetch_optional(pool)
                .await?;
                let Some((tx, pos)) = reached else { continue };
                let reached = LogPosition { transaction_id: tx, global_position: pos };
                let now = Instant::now();
                pending.retain(|(position, committed)| {
                    if *position <= reached {
                        lags.push(now.duration_since(*committed));
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
        "lag under {} events/s for {} s ({} chunks): p50 {} ms, p99 {} ms, max {} ms",
        args.rate,
        args.lag_seconds,
        lags.len(),
        at(0.5).as_millis(),
        at(0.99).as_millis(),
        lags.last().map_or(0, Duration::as_millis)
    );
    Ok(())
}

/// Generates a realistic log: per customer two catalogs; course runs with their courses;
/// learners who are linked, consent, enroll, get a grade and complete.
struct Generator {
    template: ContentMetadata,
    customers: Vec<(CustomerId, Vec<CatalogId>)>,
    runs: Vec<String>,
    learners: u64,
    buffer: Vec<Row>,
}

impl Generator {
    fn new() -> Self {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../../fixtures/discovery/course_run.json"))
                .expect("fixture");
        let template =
            discovery::from_discovery(ContentType::CourseRun, &doc).expect("fixture parses");
        Self {
            template,
            customers: Vec::new(),
            runs: Vec::new(),
            learners: 0,
            buffer: Vec::new(),
        }
    }

    fn next_chunk(&mut self, size: usize) -> Vec<Row> {
        while self.buffer.len() < size {
            self.step();
        }
        self.buffer.drain(..size).collect()
    }

    fn push<E: DomainEvent>(&mut self, aggregate_type: &str, id: String, sequence: i64, event: E) {
        let payload = serde_json::to_value(&event).expect("events serialize");
        self.buffer.push((
            aggregate_type.to_string(),
            id,
            sequence,
            event.event_type(),
            payload,
        ));
    }

    /// One learner's story, with a new customer every 2,000 learners and a new run every 100.
    fn step(&mut self) {
        if self.learners.is_multiple_of(2000) {
            self.add_customer();
        }
        if self.learners.is_multiple_of(100) {
            self.add_run();
        }
        self.learners += 1;
        let n = self.learners as usize;
        let (customer, _) = self.customers[n % self.customers.len()].clone();
        let learner = LearnerId(Uuid::new_v4());
        let run = CourseRunId(self.runs[n % self.runs.len()].clone());
        let key = run.course_key().unwrap_or_else(|| CourseKey(run.0.clone()));
        let membership = domain::membership::membership_stream_id(learner);
        self.push(
            "learner_membership",
            membership,
            1,
            MembershipEvent::LearnerLinked {
                learner_id: learner,
                customer_id: customer,
                active: true,
            },
        );
        let subject = ConsentSubject::Course(key);
        let consent = domain::consent::consent_stream_id(customer, learner, &subject);
        self.push(
            "consent",
            consent,
            1,
            ConsentEvent::ConsentGranted {
                customer_id: customer,
                learner_id: learner,
                subject,
                source: ConsentSource::ConsentPage,
            },
        );
        let enrollment = domain::enrollment::enrollment_stream_id(customer, learner, &run);
        let mode = if n.is_multiple_of(4) {
            CourseMode::Audit
        } else {
            CourseMode::Verified
        };
        self.push(
            "enrollment",
            enrollment,
            1,
            EnrollmentEvent::Enrolled {
                customer_id: customer,
                learner_id: learner,
                course_run_id: run.clone(),
                mode,
                source: EnrollmentSource::EnterpriseApi,
                redemption_id: None,
                at: Utc::now(),
            },
        );
        let completion = domain::completion::completion_stream_id(customer, learner, &run);
        let percent = (n % 100) as f64 / 100.0;
        let passed = percent >= 0.5;
        self.push(
            "completion",
            completion.clone(),
            1,
            CompletionEvent::GradeChanged {
                customer_id: customer,
                learner_id: learner,
                course_run_id: run.clone(),
                percent,
                passed,
                passed_at: passed.then(Utc::now),
            },
        );
        if passed {
            self.push(
                "completion",
                completion,
                2,
                CompletionEvent::CourseCompleted {
                    customer_id: customer,
                    learner_id: learner,
                    course_run_id: run,
                    grade: GradeLabel::Pass,
                    percent: Some(percent),
                    completed_at: Utc::now(),
                    progress_status: ProgressStatus::Passed,
                },
            );
        }
    }

    fn add_customer(&mut self) {
        let customer = CustomerId(Uuid::new_v4());
        let stream = domain::customer::customer_stream_id(customer);
        let consent = ConsentPolicy {
            enable_data_sharing_consent: true,
            enforce_data_sharing_consent: ConsentEnforcement::AtEnrollment,
        };
        self.push(
            "customer",
            stream.clone(),
            1,
            CustomerEvent::CustomerCreated {
                customer_id: customer,
                name: format!("Customer {}", self.customers.len()),
                slug: format!("customer-{}", self.customers.len()),
                consent,
                enable_audit_enrollment: false,
                enable_audit_data_reporting: false,
            },
        );
        let mut catalogs = Vec::new();
        for (i, filter) in [serde_json::json!({}), serde_json::json!({"content_type": "courserun", "pacing_type": ["instructor_paced", "self_paced"]})].into_iter().enumerate() {
            let catalog = CatalogId(Uuid::new_v4());
            self.push("customer", stream.clone(), 2 + i as i64, CustomerEvent::CatalogAdded { customer_id: customer, catalog_id: catalog, title: format!("Catalog {i}"), content_filter: filter, enabled_course_modes: vec![CourseMode::Audit, CourseMode::Verified], publish_audit_enrollment_urls: false });
            catalogs.push(catalog);
        }
        self.customers.push((customer, catalogs));
    }

    fn add_run(&mut self) {
        let n = self.runs.len();
        let mut run = self.template.clone();
        run.key = format!("course-v1:Org{}+Course{n}+Run", n % 50);
        run.course_key = Some(format!("Org{}+Course{n}", n % 50));
        run.title = format!("Course {n}");
        let stream = domain::content::content_stream_id(ContentType::CourseRun, &run.key);
        self.runs.push(run.key.clone());
        self.push(
            "content_item",
            stream,
            1,
            ContentEvent::ContentPublished { metadata: run },
        );
    }
}
