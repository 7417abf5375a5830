//! bench-transmit: how fast workers drain the outbox into a local fake LRS, and how long a
//! completion takes from its event to the remote.
//!
//! In a scratch database it creates and drops itself:
//! 1. baseline: the raw rate of the same statements POSTed straight to the fake LRS with the
//!    workers' concurrency (no database);
//! 2. drain: N prepared learner rows (xAPI completions) written into the outbox, then
//!    `transmitters::run` until every row is sent; rows/s and the ratio to the baseline;
//! 3. latency: the consent and outbox runners and the workers running, completions appended
//!    as events at a steady rate; the time from each commit to the fake's receipt (p50, p99).

use chrono::Utc;
use clap::Parser;
use domain::channel::{channel_stream_id, ChannelCommand, ChannelConfiguration, ChannelSettings};
use domain::completion::{completion_stream_id, Completion, CompletionCommand, LmsFact};
use domain::course_mode::CourseMode;
use domain::customer::{ConsentEnforcement, ConsentPolicy, Customer, CustomerCommand};
use domain::enrollment::{enrollment_stream_id, Enrollment, EnrollmentCommand, EnrollmentSource};
use domain::ids::{CatalogId, ChannelConfigId, CourseRunId, CustomerId, LearnerId};
use projections::read_models::consent::ConsentProjection;
use projections::read_models::outbox::Outbox;
use projections::runner::{self, RunnerOptions};
use projections::Projection;
use sqlx::{Connection, PgConnection, PgPool};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::secrets::SecretBox;
use store::{CommandMetadata, EventStore};
use transmitters::fakes::{serve, xapi::FakeLrs};
use transmitters::WorkerOptions;
use uuid::Uuid;

const RUN: &str = "course-v1:edX+DemoX+Demo_Course";

/// Measure the transmitters' drain rate against raw HTTP, and event-to-remote latency.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// A PostgreSQL URL with the right to create databases; the benchmark creates a scratch
    /// database beside the one named here and drops it at the end.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Learner rows prepared in the outbox.
    #[arg(long, default_value_t = 50_000)]
    rows: usize,
    /// Worker loops.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Requests in flight per worker.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Rows claimed per turn.
    #[arg(long, default_value_t = 256)]
    batch: i64,
    /// Completions per second while the latency is measured.
    #[arg(long, default_value_t = 50)]
    rate: u64,
    /// How long the latency is measured, in seconds (0 skips it).
    #[arg(long, default_value_t = 20)]
    latency_seconds: u64,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args = Args::parse();
    let scratch = format!("bench_transmit_{}", std::process::id());
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

struct World {
    store: EventStore,
    customer: CustomerId,
    config: Uuid,
}

async fn run(args: &Args, scratch: &str) -> Result<(), Failure> {
    let url = store::db::with_database(&args.database_url, scratch);
    let pool = store::db::connect(&url, 40).await?;
    store::db::migrate(&pool).await?;
    let lrs = FakeLrs::new("bench-key", "bench-secret");
    let running = serve(lrs.router(), "127.0.0.1:0".parse()?).await?;
    let key = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect::<String>();
    let secrets = SecretBox::from_hex(&key)?;
    let world = world(&pool, &secrets, &running.url()).await?;
    let options = WorkerOptions {
        workers: args.workers,
        concurrency: args.concurrency,
        batch: args.batch,
        poll: Duration::from_millis(50),
        rate_per_config: 1_000_000.0,
        burst_per_config: 1_000_000,
        secrets: Some(secrets),
        ..WorkerOptions::default()
    };

    let raw = baseline(
        &running.url(),
        args.rows.min(10_000),
        args.workers * args.concurrency,
    )
    .await?;
    println!(
        "baseline: {} POSTs straight to the fake LRS, {} in flight: {raw:.0} requests/s",
        args.rows.min(10_000),
        args.workers * args.concurrency
    );

    prepare(&pool, &world, args.rows).await?;
    let started = Instant::now();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = tokio::spawn(transmitters::run(
        pool.clone(),
        options,
        wait(stopped.clone()),
    ));
    loop {
        let sent: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM outbox_items WHERE status = 'sent' AND kind = 'learner'",
        )
        .fetch_one(&pool)
        .await?;
        if sent as usize >= args.rows {
            break;
        }
        if started.elapsed() > Duration::from_secs(1800) {
            return Err(format!("only {sent} of {} rows sent after 30 minutes", args.rows).into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let rate = args.rows as f64 / seconds;
    println!(
        "drain: {} learner rows in {seconds:.1} s: {rate:.0} rows/s ({} workers x {} in flight), \
         ratio to baseline {:.2}",
        args.rows,
        args.workers,
        args.concurrency,
        rate / raw
    );
    let received = lrs.received().len();
    println!("the fake LRS holds {received} statements");

    if args.latency_seconds > 0 {
        latency(args, &pool, &world, &lrs, stopped.clone()).await?;
    }
    let _ = stop.send(true);
    workers.await??;
    Ok(())
}

async fn wait(mut stopped: tokio::sync::watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

fn meta() -> CommandMetadata {
    CommandMetadata::new("bench")
}

/// A customer that does not request consent, one catalog of everything, the fixture's run
/// published, and an xAPI configuration pointing at the fake.
async fn world(pool: &PgPool, secrets: &SecretBox, lrs: &str) -> Result<World, Failure> {
    let store = EventStore::new(pool.clone());
    let customer = CustomerId(Uuid::new_v4());
    let create = CustomerCommand::CreateCustomer {
        customer_id: customer,
        name: "Bench".into(),
        slug: "bench".into(),
        consent: ConsentPolicy {
            enable_data_sharing_consent: true,
            enforce_data_sharing_consent: ConsentEnforcement::ExternallyManaged,
        },
        enable_audit_enrollment: false,
        enable_audit_data_reporting: false,
    };
    store::services::customers::execute(&store, customer, create, &meta()).await?;
    let add = CustomerCommand::AddCatalog {
        catalog_id: CatalogId(Uuid::new_v4()),
        title: "All".into(),
        content_filter: serde_json::json!({}),
        enabled_course_modes: vec![CourseMode::Verified],
        publish_audit_enrollment_urls: false,
    };
    store
        .execute::<Customer>(
            &domain::customer::customer_stream_id(customer),
            add,
            &(),
            &meta(),
        )
        .await?;
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../../../fixtures/discovery/course_run.json"))?;
    let metadata =
        domain::content::discovery::from_discovery(domain::content::ContentType::CourseRun, &doc)?;
    let publish = domain::content::ContentCommand::PublishContent {
        metadata,
        at: Utc::now(),
    };
    store
        .execute::<domain::content::ContentItem>(
            &domain::content::content_stream_id(domain::content::ContentType::CourseRun, RUN),
            publish,
            &(),
            &meta(),
        )
        .await?;
    let mut refs = BTreeMap::new();
    refs.insert("key".to_string(), secrets.put(pool, "bench-key").await?);
    refs.insert(
        "secret".to_string(),
        secrets.put(pool, "bench-secret").await?,
    );
    let config = ChannelConfigId(Uuid::new_v4());
    let create = ChannelCommand::CreateChannelConfiguration {
        config_id: config,
        customer_id: customer,
        display_name: "Bench LRS".into(),
        active: true,
        dry_run: false,
        catalogs_to_transmit: vec![],
        transmission_chunk_size: 500,
        disable_learner_data: false,
        idp_id: None,
        settings: ChannelSettings::Xapi {
            endpoint: lrs.to_string(),
            version: "1.0.3".into(),
        },
        secrets: refs,
    };
    store
        .execute::<ChannelConfiguration>(&channel_stream_id(config), create, &(), &meta())
        .await?;
    // Caught up until the outbox knows the configuration: a catch-up stops at the horizon of
    // transactions in flight anywhere on the server (other databases' too), so one pass may
    // leave the last events for later, and rows of an unknown configuration are never claimed.
    let started = Instant::now();
    loop {
        for projection in [&ConsentProjection as &dyn Projection, &Outbox::default()] {
            runner::catch_up(pool, projection, RunnerOptions::default()).await?;
        }
        let known: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM outbox_configs WHERE config_id = $1)")
                .bind(config.0)
                .fetch_one(pool)
                .await?;
        if known {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err("the outbox did not learn the configuration within a minute".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(World {
        store,
        customer,
        config: config.0,
    })
}

/// `rows` learners in the directory and one pending completion row each, written directly.
async fn prepare(pool: &PgPool, world: &World, rows: usize) -> Result<(), Failure> {
    sqlx::query(
        "INSERT INTO learners (learner_id, lms_user_id, username, email)
         SELECT md5('bench' || n)::uuid, 1000000 + n, 'bench' || n, 'bench' || n || '@example.com'
           FROM generate_series(1, $1) n",
    )
    .bind(rows as i64)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO outbox_items
                (item_id, config_id, customer_id, kind, action, subject, version, present,
                 learner_id, course_run_id, course_key, payload, status, attempts,
                 next_attempt_at, created_at, updated_at)
         SELECT md5('item' || n)::uuid, $2, $3, 'learner', 'completion',
                md5('bench' || n)::uuid || ':' || $4, 1, true, md5('bench' || n)::uuid, $4,
                'edX+DemoX',
                jsonb_build_object('grade', 'Pass', 'percent', 0.8, 'completed_at', now(),
                                   'progress_status', 'Passed', 'course_run_id', $4,
                                   'course_key', 'edX+DemoX', 'mode', 'verified'),
                'pending', 0, now(), now(), now()
           FROM generate_series(1, $1) n",
    )
    .bind(rows as i64)
    .bind(world.config)
    .bind(world.customer.0)
    .bind(RUN)
    .execute(pool)
    .await?;
    // Statistics for the freshly written tables, as autovacuum keeps them for a table that grew
    // over time: without them the claim's anti-join is planned as a nested loop over every
    // leased row, and each claim takes minutes.
    sqlx::query("ANALYZE outbox_items, learners")
        .execute(pool)
        .await?;
    Ok(())
}

/// The same statements POSTed with `in_flight` requests at once, straight to the fake.
async fn baseline(lrs: &str, count: usize, in_flight: usize) -> Result<f64, Failure> {
    let client = reqwest::Client::new();
    let url = format!("{lrs}/statements");
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (client, url, next) = (client.clone(), url.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= count {
                    return Ok::<(), reqwest::Error>(());
                }
                let statement = serde_json::json!({
                    "id": Uuid::new_v4(),
                    "actor": {"objectType": "Agent", "name": format!("b{n}"),
                              "mbox": format!("mailto:b{n}@example.com")},
                    "verb": {"id": transmitters::xapi::COMPLETED, "display": {"en-US": "completed"}},
                    "object": {"objectType": "Activity",
                               "id": "https://localhost/xapi/activities/course/edX+DemoX"},
                    "result": {"score": {"scaled": 0.8, "raw": 80, "min": 0, "max": 100},
                               "success": true, "completion": true},
                    "version": "1.0.3",
                });
                client
                    .post(&url)
                    .basic_auth("bench-key", Some("bench-secret"))
                    .header("X-Experience-API-Version", "1.0.3")
                    .header("Content-Type", "application/json")
                    .body(statement.to_string())
                    .send()
                    .await?
                    .error_for_status()?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Completions appended at a steady rate while runners and workers run; the time from each
/// commit to the fake's receipt.
async fn latency(
    args: &Args,
    pool: &PgPool,
    world: &World,
    lrs: &FakeLrs,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> Result<(), Failure> {
    let count = (args.rate * args.latency_seconds) as usize;
    println!("latency: preparing {count} linked, enrolled learners");
    let run = CourseRunId(RUN.into());
    let mut learners = Vec::with_capacity(count);
    for n in 0..count {
        let email = format!("steady{n}@example.com");
        let user = store::directory::LmsUser {
            lms_user_id: 5_000_000 + n as i64,
            username: format!("steady{n}"),
            email: email.clone(),
            sso_ids: Vec::new(),
        };
        let learner = store::services::learners::register(&world.store, &user, &meta())
            .await?
            .learner_id;
        store::services::learners::link_by_email(&world.store, world.customer, &email, &meta())
            .await?;
        let enroll = EnrollmentCommand::Enroll {
            customer_id: world.customer,
            learner_id: learner,
            course_run_id: run.clone(),
            mode: CourseMode::Verified,
            source: EnrollmentSource::CustomerAdmin,
            redemption_id: None,
            at: Utc::now(),
        };
        world
            .store
            .execute::<Enrollment>(
                &enrollment_stream_id(world.customer, learner, &run),
                enroll,
                &(),
                &meta(),
            )
            .await?;
        learners.push((learner, email));
    }
    let runners: Vec<_> = [
        Arc::new(ConsentProjection) as Arc<dyn Projection>,
        Arc::new(Outbox::default()),
    ]
    .into_iter()
    .map(|projection| {
        tokio::spawn(runner::run(
            pool.clone(),
            projection,
            RunnerOptions::default(),
            stopped.clone(),
        ))
    })
    .collect();
    // Let the runners catch up with the preparation before the clock starts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let completed = |r: &transmitters::fakes::xapi::Received| {
        r.statement["verb"]["id"] == transmitters::xapi::COMPLETED
    };
    let already = lrs.received().iter().filter(|r| completed(r)).count();
    let mut committed: HashMap<String, Instant> = HashMap::new();
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let mut tick = tokio::time::interval(interval);
    let mut pending = tokio::task::JoinSet::new();
    for (learner, email) in learners {
        tick.tick().await;
        let store = world.store.clone();
        let (customer, run) = (world.customer, run.clone());
        pending.spawn(async move {
            complete(&store, customer, learner, &run).await?;
            Ok::<_, Failure>((email, Instant::now()))
        });
        while let Some(done) = pending.try_join_next() {
            let (email, at) = done??;
            committed.insert(format!("mailto:{email}"), at);
        }
    }
    while let Some(done) = pending.join_next().await {
        let (email, at) = done??;
        committed.insert(format!("mailto:{email}"), at);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while lrs.received().iter().filter(|r| completed(r)).count() < already + count
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut latencies: Vec<Duration> = lrs
        .received()
        .iter()
        // Only the completions: the enrollments' `registered` statements went out before.
        .filter(|r| completed(r))
        .filter_map(|r| {
            let mbox = r.statement["actor"]["mbox"].as_str()?;
            let at = committed.get(mbox)?;
            Some(r.at.saturating_duration_since(*at))
        })
        .collect();
    latencies.sort();
    if latencies.len() < count {
        println!(
            "latency: only {} of {count} completions arrived",
            latencies.len()
        );
    }
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "latency under {} completions/s for {} s ({} measured): p50 {} ms, p99 {} ms",
        args.rate,
        args.latency_seconds,
        latencies.len(),
        pick(0.50).as_millis(),
        pick(0.99).as_millis()
    );
    for runner in runners {
        runner.abort();
    }
    Ok(())
}

async fn complete(
    store: &EventStore,
    customer: CustomerId,
    learner: LearnerId,
    run: &CourseRunId,
) -> Result<(), Failure> {
    let grade = CompletionCommand {
        customer_id: customer,
        learner_id: learner,
        course_run_id: run.clone(),
        mode: CourseMode::Verified,
        at: Utc::now(),
        fact: LmsFact::RecordGrade {
            percent: 0.8,
            passed: true,
            passed_at: Some(Utc::now()),
        },
    };
    store
        .execute::<Completion>(
            &completion_stream_id(customer, learner, run),
            grade,
            &(),
            &meta(),
        )
        .await?;
    Ok(())
}
