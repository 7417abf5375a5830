//! bench-api: the HTTP API under load, against the raw insert limit of the machine.
//!
//! In a scratch database it creates and drops itself, it prepares a customer with one catalog,
//! `--runs` published course runs and `--learners` linked learners (half of them granted
//! consent), starts the service (API and projection runners) on a loopback port, and then, at
//! `--connections` concurrent connections:
//!
//! 1. consent GET (`/consent/api/v1/data_sharing_consent`) for `--seconds`: requests/s, p50, p99;
//! 2. raw one-row INSERTs, `--enrollments` of them: the machine's append limit;
//! 3. enrollment POST (`/enterprise/api/v1/enterprise-course-enrollment/`), `--enrollments`
//!    new enrollments: requests/s, p50, p99, and the ratio to the raw insert rate.
//!
//! The load generator runs in the same process as the service and PostgreSQL on the same host:
//! the figures are what one machine does with all three, not the service alone.

use api::auth::Verifier;
use api::AppState;
use clap::Parser;
use domain::consent::{
    consent_stream_id, Action, Consent, ConsentCommand, ConsentSource, ConsentSubject,
};
use domain::content::{content_stream_id, discovery, ContentCommand, ContentItem, ContentType};
use domain::course_mode::CourseMode;
use domain::customer::{ConsentPolicy, CustomerCommand};
use domain::ids::{CatalogId, CustomerId};
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;
use sqlx::{Connection, PgConnection};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::{CommandMetadata, EventStore};
use tokio::sync::watch;
use uuid::Uuid;

const SECRET: &str = "bench-api-secret";
const COURSE_RUN: &str = include_str!("../../../fixtures/discovery/course_run.json");

/// Load the HTTP API: consent GET and enrollment POST, against raw INSERTs.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// A PostgreSQL URL with the right to create databases; the benchmark creates a scratch
    /// database beside the one named here and drops it at the end.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Concurrent connections of the load generator.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// How long the consent GET load runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Learners to prepare.
    #[arg(long, default_value_t = 1000)]
    learners: usize,
    /// Course runs to prepare; learners x runs bounds the enrollments.
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Enrollment POSTs (and raw inserts) to make.
    #[arg(long, default_value_t = 5000)]
    enrollments: usize,
    /// Database connections of the service under test (the raw baseline has one per load
    /// connection). On a small machine a pool near PostgreSQL's best concurrency beats one
    /// connection per request.
    #[arg(long, default_value_t = 16)]
    server_connections: u32,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.enrollments > args.learners * args.runs {
        return Err("--enrollments must not exceed --learners x --runs".into());
    }
    let scratch = format!("bench_api_{}", std::process::id());
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
    // PostgreSQL allows 100 connections by default: this pool (preparation, runners, the raw
    // baseline), the runners' own leader connections and the service's pool share them.
    let pool = store::db::connect(&url, args.connections as u32).await?;
    store::db::migrate(&pool).await?;
    store::bench::create_raw_table(&pool).await?;
    let store = EventStore::new(pool.clone());

    let started = Instant::now();
    let customer = prepare(&store, args).await?;
    let (stop, shutdown) = watch::channel(false);
    projections::runner::spawn_all(&pool, &shutdown);
    let last: i64 = sqlx::query_scalar("SELECT max(global_position) FROM events")
        .fetch_one(&pool)
        .await?;
    let names: Vec<&str> = projections::read_models::all()
        .iter()
        .map(|p| p.name())
        .collect();
    while api::consistency::MinPosition(Some(last))
        .wait(&pool, &names)
        .await
        .is_err()
    {}
    println!(
        "prepared {} learners, {} runs in {:.1} s",
        args.learners,
        args.runs,
        started.elapsed().as_secs_f64()
    );

    let verifier = Verifier::new(Some(SECRET), None, None, None)?;
    let server_pool = store::db::connect(&url, args.server_connections).await?;
    let app = api::app(AppState::new(server_pool, verifier));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let mut server_shutdown = shutdown.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_shutdown.wait_for(|s| *s).await;
            })
            .await;
    });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()?;
    let token = encode(
        &Header::default(),
        &json!({"preferred_username": "lms", "roles": ["lms_service"],
                "exp": chrono::Utc::now().timestamp() + 3600}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )?;
    let auth = Arc::new(format!("JWT {token}"));

    println!(
        "{} load connections, {} service database connections",
        args.connections, args.server_connections
    );
    println!(
        "{:<22} {:>10} {:>10} {:>9} {:>9}",
        "load", "requests", "per second", "p50 ms", "p99 ms"
    );
    let consent = {
        let (client, auth, base) = (client.clone(), auth.clone(), base.clone());
        let learners = args.learners;
        let deadline = Instant::now() + Duration::from_secs(args.seconds);
        load(args.connections, move |n| {
            let url = format!(
                "{base}/consent/api/v1/data_sharing_consent?username=learner{}&enterprise_customer_uuid={customer}&course_id=edX%2BDemoX",
                n % learners
            );
            let request = client.get(url).header("Authorization", auth.as_str());
            (Instant::now() < deadline).then_some(request)
        })
        .await?
    };
    consent.print("consent GET");

    let raw = store::bench::raw_insert_rate(&pool, args.enrollments, args.connections).await?;
    println!(
        "{:<22} {:>10} {:>10.0}",
        "raw INSERT", args.enrollments, raw
    );

    let enrollments = {
        let (client, auth, base) = (client.clone(), auth.clone(), base.clone());
        let (learners, total) = (args.learners, args.enrollments);
        load(args.connections, move |n| {
            (n < total).then(|| {
                let body = json!({"username": format!("learner{}", n % learners),
                                  "course_id": run_key(n / learners)});
                client
                    .post(format!(
                        "{base}/enterprise/api/v1/enterprise-course-enrollment/"
                    ))
                    .header("Authorization", auth.as_str())
                    .json(&body)
            })
        })
        .await?
    };
    enrollments.print("enrollment POST");
    println!(
        "enrollment POST / raw INSERT = {:.2}",
        enrollments.per_second / raw
    );
    let _ = stop.send(true);
    pool.close().await;
    Ok(())
}

fn run_key(n: usize) -> String {
    format!("course-v1:edX+DemoX+Bench_{n}")
}

/// A customer with one catalog holding everything, the runs, and the learners.
async fn prepare(
    store: &EventStore,
    args: &Args,
) -> Result<CustomerId, Box<dyn std::error::Error>> {
    let meta = CommandMetadata::new("bench");
    let customer = CustomerId(Uuid::new_v4());
    let create = CustomerCommand::CreateCustomer {
        customer_id: customer,
        name: "Bench".into(),
        slug: "bench".into(),
        consent: ConsentPolicy::default(),
        enable_audit_enrollment: true,
        enable_audit_data_reporting: false,
    };
    store::services::customers::execute(store, customer, create, &meta).await?;
    let catalog = CustomerCommand::AddCatalog {
        catalog_id: CatalogId(Uuid::new_v4()),
        title: "All Content".into(),
        content_filter: json!({}),
        enabled_course_modes: vec![CourseMode::Verified, CourseMode::Audit],
        publish_audit_enrollment_urls: false,
    };
    store::services::customers::execute(store, customer, catalog, &meta).await?;
    let template: serde_json::Value = serde_json::from_str(COURSE_RUN)?;
    for n in 0..args.runs {
        let mut doc = template.clone();
        doc["key"] = json!(run_key(n));
        let metadata = discovery::from_discovery(ContentType::CourseRun, &doc)?;
        let stream = content_stream_id(ContentType::CourseRun, &metadata.key);
        let publish = ContentCommand::PublishContent {
            metadata,
            at: chrono::Utc::now(),
        };
        store
            .execute::<ContentItem>(&stream, publish, &(), &meta)
            .await?;
    }
    let shared = Arc::new(store.clone());
    store::bench::rate(args.learners, 16, move |_| {
        let store = shared.clone();
        async move {
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            learner(&store, customer, n)
                .await
                .map_err(|e| e.to_string())
        }
    })
    .await?;
    Ok(customer)
}

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Registers learner `n`, links them, and grants consent for every other one.
async fn learner(
    store: &EventStore,
    customer: CustomerId,
    n: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let meta = CommandMetadata::new("bench");
    let email = format!("learner{n}@example.com");
    let user = store::directory::LmsUser {
        lms_user_id: n as i64 + 1,
        username: format!("learner{n}"),
        email: email.clone(),
        sso_ids: Vec::new(),
    };
    let learner = store::services::learners::register(store, &user, &meta)
        .await?
        .learner_id;
    store::services::learners::link_by_email(store, customer, &email, &meta).await?;
    if n.is_multiple_of(2) {
        let subject = ConsentSubject::for_course_id("edX+DemoX");
        let stream = consent_stream_id(customer, learner, &subject);
        let grant = ConsentCommand {
            customer_id: customer,
            learner_id: learner,
            subject,
            source: ConsentSource::ConsentPage,
            action: Action::Grant,
        };
        store.execute::<Consent>(&stream, grant, &(), &meta).await?;
    }
    Ok(())
}

/// What one load run measured.
struct Measured {
    requests: usize,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Measured {
    fn print(&self, name: &str) {
        println!(
            "{name:<22} {:>10} {:>10.0} {:>9.2} {:>9.2}",
            self.requests, self.per_second, self.p50_ms, self.p99_ms
        );
    }
}

/// Sends requests over `connections` tasks until `next` gives none; every answer must be a
/// success. `next` gets a shared counter, so requests are numbered 0, 1, 2, ... across tasks.
async fn load<F>(connections: usize, next: F) -> Result<Measured, Box<dyn std::error::Error>>
where
    F: Fn(usize) -> Option<reqwest::RequestBuilder> + Send + Sync + 'static,
{
    let next = Arc::new(next);
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (next, counter) = (next.clone(), counter.clone());
        tasks.spawn(async move {
            let mut samples = Vec::new();
            loop {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(request) = next(n) else { break };
                let sent = Instant::now();
                let response = request.send().await.map_err(|e| e.to_string())?;
                let status = response.status();
                let body = response.bytes().await.map_err(|e| e.to_string())?;
                if !status.is_success() {
                    return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
                }
                samples.push(sent.elapsed().as_micros() as u64);
            }
            Ok::<_, String>(samples)
        });
    }
    let mut samples = Vec::new();
    while let Some(done) = tasks.join_next().await {
        samples.extend(done??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (p50_ms, p99_ms) = store::bench::percentiles(&mut samples);
    Ok(Measured {
        requests: samples.len(),
        per_second: samples.len() as f64 / elapsed,
        p50_ms,
        p99_ms,
    })
}
