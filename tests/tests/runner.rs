//! The projection runner: exactly-once effects across a kill, leadership and takeover, poison
//! events, notifications, status and rebuilds.

use async_trait::async_trait;
use projections::runner::{self, RunnerError, RunnerOptions};
use projections::{rebuild, status, ApplyError, Projection};
use sqlx::{PgConnection, PgPool};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::log::LoggedEvent;
use tokio::sync::{watch, Notify};

/// Records every event it applies; the primary key makes a double application fail loudly.
struct Recorder {
    runner: &'static str,
    hang_at: Option<i64>,
    hanging: Arc<Notify>,
    released: AtomicBool,
}

impl Recorder {
    fn new(runner: &'static str) -> Self {
        Self {
            runner,
            hang_at: None,
            hanging: Arc::new(Notify::new()),
            released: AtomicBool::new(false),
        }
    }
}

#[async_trait]
impl Projection for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["recorder_events"]
    }

    async fn apply(&self, conn: &mut PgConnection, event: &LoggedEvent) -> Result<(), ApplyError> {
        if event.event_type == "Poison" {
            return Err(ApplyError::Malformed("this event cannot be applied".into()));
        }
        sqlx::query(
            "INSERT INTO recorder_events (global_position, stream, runner) VALUES ($1, $2, $3)",
        )
        .bind(event.position.global_position)
        .bind(&event.aggregate_id)
        .bind(self.runner)
        .execute(&mut *conn)
        .await?;
        if Some(event.sequence) == self.hang_at && !self.released.load(Ordering::SeqCst) {
            self.hanging.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

async fn setup(pool: &PgPool) {
    sqlx::query("CREATE TABLE recorder_events (global_position bigint PRIMARY KEY, stream text NOT NULL, runner text NOT NULL)")
        .execute(pool)
        .await
        .unwrap();
}

/// Appends `count` events to stream `stream` (sequences 1..=count), one transaction each, and
/// wakes the readers as the event store does.
async fn append(pool: &PgPool, stream: &str, count: i64, event_type: &str) {
    let start: i64 =
        sqlx::query_scalar("SELECT coalesce(max(sequence), 0) FROM events WHERE aggregate_id = $1")
            .bind(stream)
            .fetch_one(pool)
            .await
            .unwrap();
    for sequence in start + 1..=start + count {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             VALUES ('test', $1, $2, $3, '1.0', '{}', '{}')",
        )
        .bind(stream)
        .bind(sequence)
        .bind(event_type)
        .execute(pool)
        .await
        .unwrap();
    }
    sqlx::query("SELECT pg_notify('events', '')")
        .execute(pool)
        .await
        .unwrap();
}

async fn recorded(pool: &PgPool) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT global_position, runner FROM recorder_events ORDER BY global_position")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Polls until `check` holds, for at most ten seconds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn options(batch_size: i64) -> RunnerOptions {
    RunnerOptions {
        batch_size,
        poll_interval: Duration::from_millis(50),
    }
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_runner_killed_mid_batch_leaves_no_double_effect(pool: PgPool) {
    setup(&pool).await;
    append(&pool, "s", 50, "Tested").await;
    e2e_tests::read_log(&pool, 50).await;
    let mut hanging = Recorder::new("first");
    hanging.hang_at = Some(25);
    let hanging = Arc::new(hanging);
    let signal = hanging.hanging.clone();
    // The doomed runner has its own connections, as a process of its own would.
    let process = sqlx::postgres::PgPoolOptions::new()
        .connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
    let (_stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(runner::run(
        process.clone(),
        hanging.clone(),
        options(10),
        shutdown,
    ));
    signal.notified().await;
    // Killed after applying events 21..=25 of its third batch, before committing it: the task
    // stops and its connections close.
    task.abort();
    let _ = task.await;
    process.close().await;
    assert_eq!(
        recorded(&pool).await.len(),
        20,
        "only committed batches are visible"
    );

    let position = runner::catch_up(&pool, &Recorder::new("second"), options(10))
        .await
        .unwrap();
    let rows = recorded(&pool).await;
    assert_eq!(rows.len(), 50, "every event applied exactly once");
    assert_eq!(rows.last().unwrap().0, position.global_position);
    assert!(
        rows[..20].iter().all(|(_, r)| r == "first")
            && rows[20..].iter().all(|(_, r)| r == "second")
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn of_two_runners_one_leads_and_the_other_takes_over_when_it_stops(pool: PgPool) {
    setup(&pool).await;
    let (stop_a, shutdown_a) = watch::channel(false);
    let (stop_b, shutdown_b) = watch::channel(false);
    let a = tokio::spawn(runner::run(
        pool.clone(),
        Arc::new(Recorder::new("a")),
        options(100),
        shutdown_a,
    ));
    // `a` is the leader once it applied something; only then does `b` start.
    append(&pool, "warmup", 1, "Tested").await;
    eventually("the first runner leads", || async {
        recorded(&pool).await.len() == 1
    })
    .await;
    let b = tokio::spawn(runner::run(
        pool.clone(),
        Arc::new(Recorder::new("b")),
        options(100),
        shutdown_b,
    ));

    append(&pool, "s", 20, "Tested").await;
    eventually("the leader applied the first events", || async {
        recorded(&pool).await.len() == 21
    })
    .await;
    assert!(
        recorded(&pool).await.iter().all(|(_, r)| r == "a"),
        "only the leader applies"
    );

    stop_a.send(true).unwrap();
    a.await.unwrap().unwrap();
    append(&pool, "s", 20, "Tested").await;
    eventually("the standby took over", || async {
        recorded(&pool).await.len() == 41
    })
    .await;
    assert!(recorded(&pool).await[21..].iter().all(|(_, r)| r == "b"));

    stop_b.send(true).unwrap();
    b.await.unwrap().unwrap();
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_poison_event_stops_the_projection_with_an_error_naming_it(pool: PgPool) {
    setup(&pool).await;
    append(&pool, "s", 3, "Tested").await;
    append(&pool, "s", 1, "Poison").await;
    append(&pool, "s", 3, "Tested").await;
    e2e_tests::read_log(&pool, 7).await;
    let (_stop, shutdown) = watch::channel(false);
    let err = runner::run(
        pool.clone(),
        Arc::new(Recorder::new("a")),
        options(2),
        shutdown,
    )
    .await
    .unwrap_err();
    match &err {
        RunnerError::Poison {
            event_type,
            sequence,
            aggregate_id,
            reason,
            ..
        } => {
            assert_eq!(
                (event_type.as_str(), *sequence, aggregate_id.as_str()),
                ("Poison", 4, "s")
            );
            assert!(reason.contains("cannot be applied"));
        }
        other => panic!("expected a poison error, got {other}"),
    }
    assert_eq!(
        recorded(&pool).await.len(),
        3,
        "the events before it were applied, none after"
    );
    let state = status::all(&pool).await.unwrap();
    let recorder = state.iter().find(|s| s.name == "recorder").unwrap();
    assert_eq!(recorder.lag_events, 4);
    assert!(recorder.last_error.as_deref().unwrap().contains("Poison"));
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_notification_wakes_an_idle_runner_long_before_its_poll(pool: PgPool) {
    setup(&pool).await;
    let (stop, shutdown) = watch::channel(false);
    let slow_poll = RunnerOptions {
        batch_size: 100,
        poll_interval: Duration::from_secs(60),
    };
    let task = tokio::spawn(runner::run(
        pool.clone(),
        Arc::new(Recorder::new("a")),
        slow_poll,
        shutdown,
    ));
    append(&pool, "warmup", 1, "Tested").await;
    eventually("the runner started", || async {
        recorded(&pool).await.len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    append(&pool, "s", 1, "Tested").await;
    eventually("the new event was applied", || async {
        recorded(&pool).await.len() == 2
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn status_reports_position_and_lag(pool: PgPool) {
    setup(&pool).await;
    runner::catch_up(&pool, &Recorder::new("a"), options(100))
        .await
        .unwrap();
    append(&pool, "s", 10, "Tested").await;
    e2e_tests::read_log(&pool, 10).await;
    let behind = status::all(&pool).await.unwrap();
    assert_eq!(behind[0].lag_events, 10);
    assert!(behind[0].lag_seconds >= 0.0);
    let position = runner::catch_up(&pool, &Recorder::new("a"), options(100))
        .await
        .unwrap();
    let caught_up = status::all(&pool).await.unwrap();
    assert_eq!(
        (caught_up[0].lag_events, caught_up[0].position),
        (0, position)
    );
    assert_eq!(caught_up[0].lag_seconds, 0.0);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn rebuilds_give_the_same_rows_as_incremental_catch_up(pool: PgPool) {
    setup(&pool).await;
    append(&pool, "a", 30, "Tested").await;
    append(&pool, "b", 30, "Tested").await;
    e2e_tests::read_log(&pool, 60).await;
    let recorder = Recorder::new("r");
    let incremental_position = runner::catch_up(&pool, &recorder, options(7))
        .await
        .unwrap();
    let incremental = recorded(&pool).await;

    let fresh_position = rebuild::into_fresh_tables(&pool, &recorder, options(13))
        .await
        .unwrap();
    assert_eq!(fresh_position, incremental_position);
    assert_eq!(recorded(&pool).await, incremental);

    let in_place_position = rebuild::in_place(&pool, &recorder, options(1000))
        .await
        .unwrap();
    assert_eq!(in_place_position, incremental_position);
    assert_eq!(recorded(&pool).await, incremental);
    let leftovers: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rebuild_%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(leftovers, 0);
}

/// A recorder that reads only the `test` aggregate's events.
struct Picky(Recorder);

#[async_trait]
impl Projection for Picky {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn tables(&self) -> &'static [&'static str] {
        self.0.tables()
    }

    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&["test"])
    }

    async fn apply(&self, conn: &mut PgConnection, event: &LoggedEvent) -> Result<(), ApplyError> {
        assert_eq!(event.aggregate_type, "test", "an event it does not read");
        self.0.apply(conn, event).await
    }
}

/// Appends `count` events of another aggregate type.
async fn append_other(pool: &PgPool, stream: &str, count: i64) {
    for sequence in 1..=count {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             VALUES ('other', $1, $2, 'Other', '1.0', '{}', '{}')",
        )
        .bind(stream)
        .bind(sequence)
        .execute(pool)
        .await
        .unwrap();
    }
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_projection_reading_some_types_gets_all_of_them_and_ends_at_the_head(pool: PgPool) {
    setup(&pool).await;
    append(&pool, "s", 2, "Tested").await;
    append_other(&pool, "o1", 3).await;
    append(&pool, "s", 3, "Tested").await;
    append_other(&pool, "o2", 4).await;
    e2e_tests::read_log(&pool, 12).await;
    let wanted: Vec<i64> = sqlx::query_scalar(
        "SELECT global_position FROM events WHERE aggregate_type = 'test' ORDER BY global_position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(wanted.len(), 5);

    // Batches of two log events: some hold only events of the other type, and the
    // checkpoint goes past them.
    let position = runner::catch_up(&pool, &Picky(Recorder::new("a")), options(2))
        .await
        .unwrap();
    let applied: Vec<i64> = recorded(&pool).await.into_iter().map(|(p, _)| p).collect();
    assert_eq!(applied, wanted);
    let head = store::log::head(&pool).await.unwrap();
    assert_eq!(position, head, "past the other types' events");
    let status = status::all(&pool).await.unwrap();
    assert_eq!((status[0].lag_events, status[0].position), (0, head));

    // More of both: only the new `test` events are applied.
    append_other(&pool, "o3", 2).await;
    append(&pool, "s", 1, "Tested").await;
    e2e_tests::read_log(&pool, 15).await;
    runner::catch_up(&pool, &Picky(Recorder::new("a")), options(2))
        .await
        .unwrap();
    assert_eq!(recorded(&pool).await.len(), 6);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn rebuilding_together_gives_the_rows_of_incremental_catch_up(pool: PgPool) {
    let mut generator = projections::bench_log::Generator::new();
    let mut head = Default::default();
    for _ in 0..3 {
        head = projections::bench_log::insert(&pool, &generator.next_chunk(400))
            .await
            .unwrap();
    }
    e2e_tests::read_log(&pool, 1200).await;
    let all = projections::read_models::all();
    let mut incremental = Vec::new();
    for projection in &all {
        let position = runner::catch_up(&pool, projection.as_ref(), options(37))
            .await
            .unwrap();
        assert_eq!(position, head, "{} caught up", projection.name());
        let rows = e2e_tests::dump_tables(&pool, projection.as_ref()).await;
        incremental.push((projection.name(), rows));
    }
    let rows = |name: &str| {
        incremental
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
            .len()
    };
    assert!(rows("enrollments") > 100 && rows("outbox") > 100 && rows("catalog") > 0);

    // Batches of another size, the slowest read model several batches behind the reader; the
    // read models that fold the log drop and build again their indexes, which come back whole.
    let indexes = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexdef",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let before = indexes().await;
    let reached = rebuild::in_place_together(&pool, &all, options(13), None)
        .await
        .unwrap();
    assert_eq!(reached, vec![head; all.len()]);
    assert_eq!(indexes().await, before);
    for ((name, rows), projection) in incremental.iter().zip(&all) {
        let rebuilt = e2e_tests::dump_tables(&pool, projection.as_ref()).await;
        assert!(rebuilt == *rows, "{name}: rebuilt together differs");
    }
}

/// A read model that records nothing and reads only the `other` aggregate's events.
struct Others;

#[async_trait]
impl Projection for Others {
    fn name(&self) -> &'static str {
        "others"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&["other"])
    }

    async fn apply(&self, _: &mut PgConnection, event: &LoggedEvent) -> Result<(), ApplyError> {
        assert_eq!(event.aggregate_type, "other", "an event it does not read");
        Ok(())
    }
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn rebuilding_together_gives_each_its_types_and_stops_one_at_its_poison_event(pool: PgPool) {
    setup(&pool).await;
    append(&pool, "s", 3, "Tested").await;
    append_other(&pool, "o1", 3).await;
    append(&pool, "s", 1, "Poison").await;
    append_other(&pool, "o2", 4).await;
    append(&pool, "s", 2, "Tested").await;
    e2e_tests::read_log(&pool, 13).await;
    let together: Vec<Arc<dyn Projection>> =
        vec![Arc::new(Picky(Recorder::new("a"))), Arc::new(Others)];

    let err = rebuild::in_place_together(&pool, &together, options(2), None)
        .await
        .unwrap_err();
    match &err {
        RunnerError::Poison {
            projection,
            event_type,
            sequence,
            ..
        } => assert_eq!(
            (projection.as_str(), event_type.as_str(), *sequence),
            ("recorder", "Poison", 4)
        ),
        other => panic!("expected a poison error, got {other}"),
    }
    assert_eq!(recorded(&pool).await.len(), 3, "the events before it");
    let head = store::log::head(&pool).await.unwrap();
    let state = status::all(&pool).await.unwrap();
    let of = |name: &str| state.iter().find(|s| s.name == name).unwrap();
    assert_eq!(of("recorder").lag_events, 7);
    assert!(of("recorder")
        .last_error
        .as_deref()
        .unwrap()
        .contains("Poison"));
    assert_eq!((of("others").position, of("others").lag_events), (head, 0));
}

/// Records the planner settings its batches run with.
struct PlannerSettings;

#[async_trait]
impl Projection for PlannerSettings {
    fn name(&self) -> &'static str {
        "planner"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["planner_settings"]
    }

    async fn apply(&self, conn: &mut PgConnection, _: &LoggedEvent) -> Result<(), ApplyError> {
        sqlx::query(
            "INSERT INTO planner_settings
             SELECT current_setting('enable_seqscan'), current_setting('enable_hashjoin'),
                    current_setting('plan_cache_mode')",
        )
        .execute(conn)
        .await?;
        Ok(())
    }
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn batches_are_planned_as_index_probes_and_leave_the_connection_as_it_was(pool: PgPool) {
    sqlx::query("CREATE TABLE planner_settings (seqscan text, hashjoin text, cache text)")
        .execute(&pool)
        .await
        .unwrap();
    append(&pool, "s", 1, "Tested").await;
    e2e_tests::read_log(&pool, 1).await;
    // One connection: the batch's and the query's after it.
    let one = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
    runner::catch_up(&one, &PlannerSettings, options(10))
        .await
        .unwrap();
    let settings = "SELECT current_setting('enable_seqscan'), current_setting('enable_hashjoin'),
                           current_setting('plan_cache_mode')";
    let during: Vec<(String, String, String)> = sqlx::query_as("SELECT * FROM planner_settings")
        .fetch_all(&one)
        .await
        .unwrap();
    assert_eq!(
        during,
        vec![("off".into(), "off".into(), "force_custom_plan".into())]
    );
    let after: (String, String, String) = sqlx::query_as(settings).fetch_one(&one).await.unwrap();
    assert_eq!(after, ("on".into(), "on".into(), "auto".into()));
}
