//! The transmitter workers end to end, against real PostgreSQL and the strict fake LRS: LMS
//! facts in (content published, learner linked, consent granted, enrolled, grade passed),
//! statements out (`registered` for the enrollment, `completed` for the grade); the failure
//! matrix with nothing lost; consent refused at send time; a worker killed mid-batch; two
//! workers on one outbox; dry run; the circuit breaker.
//!
//! The worker tests are about completion rows: they set the registration rows aside first
//! (`completions_only`); registrations have tests of their own.

use chrono::{Duration as Days, Utc};
use domain::channel::ChannelSettings;
use domain::consent::Action;
use domain::transmission::TransmissionStatus;
use e2e_tests::{consent_required, meta, project, World, RUN};
use projections::read_models::consent::ConsentProjection;
use projections::read_models::outbox::{claim, requeue, ItemAction, ItemStatus, OutboxItem};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::HashSet;
use std::time::Duration;
use transmitters::fakes::xapi::FakeLrs;
use transmitters::fakes::{serve, Fault, Running};
use transmitters::record::{Outcome, Recorder};
use transmitters::{Worker, WorkerOptions};
use uuid::Uuid;

mod transmitting;
use transmitting::*;

struct Setup {
    world: World,
    pool: PgPool,
    lrs: FakeLrs,
    _running: Running,
    config: Uuid,
}

/// A world whose customer requires consent, an xAPI configuration pointing at a fresh fake
/// LRS, with its key and secret stored encrypted.
async fn setup(pool: PgPool, dry_run: bool) -> Setup {
    let world = World::new(pool.clone(), consent_required()).await;
    let lrs = FakeLrs::new("lrs-key", "lrs-secret");
    let running = serve(lrs.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let config = configure(
        &world,
        NewConfig {
            settings: ChannelSettings::Xapi {
                endpoint: format!("{}/", running.url()),
                version: "1.0.3".into(),
            },
            secrets: &[("key", "lrs-key"), ("secret", "lrs-secret")],
            chunk_size: 500,
            dry_run,
            idp_id: None,
        },
    )
    .await;
    Setup {
        world,
        pool,
        lrs,
        _running: running,
        config,
    }
}

/// Projects every read model, then sets the registration rows aside: for tests about the
/// worker's handling of completion rows.
async fn completions_only(pool: &PgPool) {
    project_all(pool).await;
    registrations_aside(pool).await;
}

/// Cancels the registration rows, for tests about the worker's handling of completion rows.
async fn registrations_aside(pool: &PgPool) {
    sqlx::query(
        "UPDATE outbox_items SET status = 'cancelled', cancel_reason = 'set aside by the test'
          WHERE action = 'registration'",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// The learner rows of an action.
async fn rows_of(pool: &PgPool, config: Uuid, action: ItemAction) -> Vec<OutboxItem> {
    learner_rows(pool, config)
        .await
        .into_iter()
        .filter(|r| r.action == action)
        .collect()
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_completion_reaches_the_lrs_as_the_expected_statement(pool: PgPool) {
    let s = setup(pool, false).await;
    let learner = completing_learners(&s.world, 1, 1).await[0];
    completions_only(&s.pool).await;
    let row = rows_of(&s.pool, s.config, ItemAction::Completion)
        .await
        .remove(0);

    let report = Worker::new(s.pool.clone(), options())
        .turn("w1")
        .await
        .unwrap();
    // The published course run's content row is skipped: an LRS holds no catalog.
    assert_eq!((report.sent, report.skipped), (1, 1), "{report:?}");

    let received = s.lrs.received();
    assert_eq!(received.len(), 1);
    let expected = json!({
        "id": row.item_id.to_string(),
        "actor": {"objectType": "Agent", "name": "learner1@example.com",
                  "mbox": "mailto:learner1@example.com"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed",
                 "display": {"en-US": "completed"}},
        "object": {
            "objectType": "Activity",
            "id": "https://lms.example.com/xapi/activities/course/edX+DemoX",
            "definition": received[0].statement["object"]["definition"].clone(),
        },
        "result": {"score": {"scaled": 0.8, "raw": 80, "min": 0, "max": 100},
                   "success": true, "completion": true},
        "version": "1.0.3",
    });
    assert_eq!(received[0].statement, expected);
    let definition = &received[0].statement["object"]["definition"];
    assert_eq!(
        definition["type"],
        "http://adlnet.gov/expapi/activities/course"
    );
    assert!(definition["name"]["en-US"].is_string());
    assert_eq!(
        definition["extensions"]["https://lms.example.com/course/key"],
        "edX+DemoX"
    );
    assert_eq!(received[0].version, "1.0.3");
    assert_eq!(
        received[0].idempotency_key.as_deref(),
        Some(row.item_id.to_string().as_str())
    );

    let rows = rows_of(&s.pool, s.config, ItemAction::Completion).await;
    assert_eq!(rows[0].status, ItemStatus::Sent);
    assert_eq!(rows[0].learner_id, Some(learner.0));
    assert_eq!(audit(&s.pool, row.item_id).await, ["sent"]);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn every_failure_is_retried_and_nothing_is_lost(pool: PgPool) {
    let s = setup(pool, false).await;
    completing_learners(&s.world, 1, 5).await;
    completions_only(&s.pool).await;
    for fault in [
        Fault::TooManyRequests { retry_after: 1 },
        Fault::ServerError(503),
        Fault::Slow(Duration::from_secs(2)),
        Fault::Drop,
        Fault::BadJson,
    ] {
        s.lrs.faults.push(fault);
    }
    let worker = Worker::new(s.pool.clone(), options());
    let first = worker.turn("w1").await.unwrap();
    assert_eq!((first.failed, first.sent), (5, 0), "{first:?}");
    let rows = rows_of(&s.pool, s.config, ItemAction::Completion).await;
    assert!(rows
        .iter()
        .all(|r| r.status == ItemStatus::Pending && r.attempts == 1));
    // Only the 429 row waits its Retry-After (1 s); the others back off 5 s or more.
    let soon: Vec<_> = rows
        .iter()
        .filter(|r| r.next_attempt_at < Utc::now() + Days::seconds(3))
        .collect();
    assert_eq!(soon.len(), 1, "{rows:#?}");
    assert!(soon[0]
        .last_error
        .as_deref()
        .unwrap()
        .starts_with("HTTP 429"));

    time_passes(&s.pool).await;
    let second = worker.turn("w1").await.unwrap();
    assert_eq!(second.sent, 5, "{second:?}");
    assert_eq!(s.lrs.received().len(), 5);
    for row in rows_of(&s.pool, s.config, ItemAction::Completion).await {
        assert_eq!(row.status, ItemStatus::Sent);
        assert_eq!(audit(&s.pool, row.item_id).await, ["failed", "sent"]);
    }
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_row_failing_too_often_is_dead_lettered_then_requeued(pool: PgPool) {
    let s = setup(pool, false).await;
    completing_learners(&s.world, 1, 1).await;
    completions_only(&s.pool).await;
    s.lrs.faults.always(Fault::ServerError(500));
    let worker = Worker::new(
        s.pool.clone(),
        WorkerOptions {
            max_attempts: 2,
            ..options()
        },
    );
    worker.turn("w1").await.unwrap();
    time_passes(&s.pool).await;
    let report = worker.turn("w1").await.unwrap();
    assert_eq!(report.dead, 1);
    let row = rows_of(&s.pool, s.config, ItemAction::Completion)
        .await
        .remove(0);
    assert_eq!(row.status, ItemStatus::Dead);
    assert_eq!(
        audit(&s.pool, row.item_id).await,
        ["failed", "dead_lettered"]
    );
    assert!(s.lrs.received().is_empty());

    s.lrs.faults.clear();
    assert!(requeue(&s.pool, row.item_id).await.unwrap());
    assert_eq!(worker.turn("w1").await.unwrap().sent, 1);
    assert_eq!(s.lrs.received().len(), 1);
    assert_eq!(
        audit(&s.pool, row.item_id).await,
        ["failed", "dead_lettered", "sent"]
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_learner_who_declined_or_revoked_is_never_sent(pool: PgPool) {
    let s = setup(pool, false).await;
    let declined = s.world.learner(1).await;
    consent(&s.world, declined, Action::Decline).await;
    complete_course(&s.world, declined, 0.9).await;
    let revoking = completing_learners(&s.world, 2, 1).await[0];
    completions_only(&s.pool).await;
    let rows = rows_of(&s.pool, s.config, ItemAction::Completion).await;
    assert_eq!(rows.len(), 1, "only the consenting learner is queued");
    assert_eq!(rows[0].learner_id, Some(revoking.0));

    // The revocation reaches the consent read model before the outbox cancels the row.
    consent(&s.world, revoking, Action::Revoke).await;
    project(&s.pool, &ConsentProjection).await;
    let report = Worker::new(s.pool.clone(), options())
        .turn("w1")
        .await
        .unwrap();
    assert_eq!(report.withheld, 1, "{report:?}");
    assert!(s.lrs.requests().is_empty(), "the LRS got a refused learner");
    let row = rows_of(&s.pool, s.config, ItemAction::Completion)
        .await
        .remove(0);
    assert_eq!(row.status, ItemStatus::Cancelled);
    assert_eq!(audit(&s.pool, row.item_id).await, ["withheld"]);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_worker_killed_mid_batch_leaves_everything_to_the_next_one(pool: PgPool) {
    let s = setup(pool, false).await;
    completing_learners(&s.world, 1, 6).await;
    completions_only(&s.pool).await;
    // Two answers, then the LRS stores the third statement and hangs: the worker dies
    // between the remote applying it and the row being completed.
    s.lrs.faults.push(Fault::Slow(Duration::ZERO));
    s.lrs.faults.push(Fault::Slow(Duration::ZERO));
    s.lrs.faults.push(Fault::Stall(Duration::from_secs(30)));
    let short_lease = WorkerOptions {
        concurrency: 1,
        lease: Duration::from_secs(1),
        request_timeout: Duration::from_secs(30),
        ..options()
    };
    let dying = Worker::new(s.pool.clone(), short_lease.clone());
    let killed = tokio::time::timeout(Duration::from_millis(700), dying.turn("dying")).await;
    assert!(killed.is_err(), "the turn should still be running");
    drop(dying);
    assert_eq!(s.lrs.received().len(), 3);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let next = Worker::new(s.pool.clone(), short_lease);
    let report = next.turn("next").await.unwrap();
    assert_eq!(report.sent, 4, "{report:?}");

    let rows = rows_of(&s.pool, s.config, ItemAction::Completion).await;
    assert!(rows.iter().all(|r| r.status == ItemStatus::Sent));
    let ids: HashSet<String> = rows.iter().map(|r| r.item_id.to_string()).collect();
    let received = s.lrs.received();
    assert_eq!(received.len(), 6, "one statement per row");
    let requests = s.lrs.requests();
    assert_eq!(requests.len(), 7, "the stalled one came twice");
    for request in &requests {
        let key = request.idempotency_key.clone().unwrap();
        assert!(ids.contains(&key));
        assert_eq!(request.statement["id"], Value::String(key));
    }
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_batch_of_sends_is_recorded_and_completed_row_by_row(pool: PgPool) {
    let s = setup(pool, false).await;
    completing_learners(&s.world, 1, 40).await;
    completions_only(&s.pool).await;
    let wide = WorkerOptions {
        concurrency: 16,
        ..options()
    };
    let report = Worker::new(s.pool.clone(), wide).turn("w1").await.unwrap();
    // The course's content row is claimed too, and skipped: an LRS holds no catalog.
    assert_eq!(
        (report.claimed, report.sent, report.skipped),
        (41, 40, 1),
        "{report:?}"
    );
    let rows = rows_of(&s.pool, s.config, ItemAction::Completion).await;
    assert_eq!(rows.len(), 40);
    for row in &rows {
        assert_eq!(row.status, ItemStatus::Sent);
        assert_eq!(audit(&s.pool, row.item_id).await, ["sent"]);
    }
    assert_eq!(s.lrs.received().len(), 40);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_grouped_completion_records_every_attempt_but_completes_only_the_owners_rows(
    pool: PgPool,
) {
    let s = setup(pool, false).await;
    completing_learners(&s.world, 1, 10).await;
    completions_only(&s.pool).await;
    let claimed: Vec<OutboxItem> = claim(&s.pool, "a", 20, Duration::from_secs(60))
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.action == ItemAction::Completion)
        .collect();
    assert_eq!(claimed.len(), 10);
    let recorder = Recorder::start(s.world.store.clone());
    let sent = |item| Outcome {
        status: TransmissionStatus::Sent,
        answer: None,
        note: Some(format!("sent {item}")),
        duration: Duration::ZERO,
    };
    // Half of them as if their lease had passed to another worker; all at once, so they
    // share groups.
    let mut settling = tokio::task::JoinSet::new();
    for (n, item) in claimed.iter().cloned().enumerate() {
        let recorder = recorder.clone();
        let owner = if n % 2 == 0 { "a" } else { "b" };
        settling.spawn(async move {
            let outcome = sent(item.item_id);
            let completed = recorder.record_and_complete(&item, &outcome, None, owner);
            (n, completed.await)
        });
    }
    let mut settled: Vec<_> = settling.join_all().await;
    settled.sort_by_key(|(n, _)| *n);
    let settled = settled.into_iter().map(|(_, completed)| completed);
    let rows = rows_of(&s.pool, s.config, ItemAction::Completion).await;
    for (n, (item, completed)) in claimed.iter().zip(settled).enumerate() {
        let row = rows.iter().find(|r| r.item_id == item.item_id).unwrap();
        if n % 2 == 0 {
            assert!(completed.unwrap());
            assert_eq!(row.status, ItemStatus::Sent);
        } else {
            assert!(!completed.unwrap());
            assert_eq!(row.status, ItemStatus::Leased);
            assert_eq!(row.lease_owner.as_deref(), Some("a"));
        }
        assert_eq!(audit(&s.pool, item.item_id).await, ["sent"]);
    }
    // A later attempt of a recorded row goes through the command path, and completes too.
    let again = rows
        .iter()
        .find(|r| r.status == ItemStatus::Leased)
        .unwrap();
    let outcome = sent(again.item_id);
    let completed = recorder
        .record_and_complete(again, &outcome, None, "a")
        .await
        .unwrap();
    assert!(completed);
    assert_eq!(audit(&s.pool, again.item_id).await, ["sent", "sent"]);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn two_workers_never_send_the_same_row(pool: PgPool) {
    let s = setup(pool, false).await;
    completing_learners(&s.world, 1, 30).await;
    completions_only(&s.pool).await;
    s.lrs.faults.always(Fault::Slow(Duration::from_millis(20)));
    let small = WorkerOptions {
        batch: 5,
        concurrency: 2,
        ..options()
    };
    let (a, b) = (
        Worker::new(s.pool.clone(), small.clone()),
        Worker::new(s.pool.clone(), small),
    );
    let drain = |worker: Worker, owner: &'static str| async move {
        let mut sent = 0;
        loop {
            let report = worker.turn(owner).await.unwrap();
            if report.claimed == 0 {
                return sent;
            }
            sent += report.sent;
        }
    };
    let (sent_a, sent_b) = tokio::join!(drain(a, "a"), drain(b, "b"));
    assert_eq!(sent_a + sent_b, 30);
    assert!(sent_a > 0 && sent_b > 0, "both workers took rows");
    let requests = s.lrs.requests();
    let keys: HashSet<_> = requests.iter().map(|r| r.idempotency_key.clone()).collect();
    assert_eq!((requests.len(), keys.len()), (30, 30), "no row sent twice");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn dry_run_builds_and_records_but_sends_nothing(pool: PgPool) {
    let s = setup(pool, true).await;
    completing_learners(&s.world, 1, 1).await;
    completions_only(&s.pool).await;
    let report = Worker::new(s.pool.clone(), options())
        .turn("w1")
        .await
        .unwrap();
    assert_eq!(report.dry_run, 1, "{report:?}");
    assert!(s.lrs.requests().is_empty());
    let row = rows_of(&s.pool, s.config, ItemAction::Completion)
        .await
        .remove(0);
    assert_eq!((row.status, row.attempts), (ItemStatus::Pending, 0));
    assert_eq!(audit(&s.pool, row.item_id).await, ["dry_run"]);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn an_open_circuit_hands_rows_back_without_calling(pool: PgPool) {
    let s = setup(pool, false).await;
    completing_learners(&s.world, 1, 5).await;
    completions_only(&s.pool).await;
    s.lrs.faults.always(Fault::ServerError(502));
    let worker = Worker::new(
        s.pool.clone(),
        WorkerOptions {
            concurrency: 1,
            breaker_threshold: 2,
            breaker_cooldown: Duration::from_secs(60),
            ..options()
        },
    );
    let report = worker.turn("w1").await.unwrap();
    assert_eq!((report.failed, report.released), (2, 3), "{report:?}");
    let rows = rows_of(&s.pool, s.config, ItemAction::Completion).await;
    let attempts: Vec<i32> = rows.iter().map(|r| r.attempts).collect();
    assert_eq!(
        attempts.iter().sum::<i32>(),
        2,
        "released rows count no attempt"
    );
    assert!(rows.iter().all(|r| r.status == ItemStatus::Pending));
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn consent_the_read_model_does_not_know_yet_waits_uncounted(pool: PgPool) {
    let s = setup(pool, false).await;
    completing_learners(&s.world, 1, 1).await;
    // The outbox is up to date; the consent read model has seen nothing.
    project(
        &s.pool,
        &projections::read_models::outbox::Outbox::default(),
    )
    .await;
    registrations_aside(&s.pool).await;
    let report = Worker::new(s.pool.clone(), options())
        .turn("w1")
        .await
        .unwrap();
    assert_eq!(report.sent, 0, "{report:?}");
    assert!(s.lrs.requests().is_empty());
    let row = rows_of(&s.pool, s.config, ItemAction::Completion)
        .await
        .remove(0);
    assert_eq!((row.status, row.attempts), (ItemStatus::Pending, 0));
    assert!(row.next_attempt_at > Utc::now() + Days::seconds(5));
    assert_eq!(audit(&s.pool, row.item_id).await, ["failed"]);

    project(&s.pool, &ConsentProjection).await;
    time_passes(&s.pool).await;
    assert_eq!(
        Worker::new(s.pool.clone(), options())
            .turn("w1")
            .await
            .unwrap()
            .sent,
        1
    );
    assert_eq!(s.lrs.received().len(), 1);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn an_enrollment_reaches_the_lrs_as_two_registered_statements(pool: PgPool) {
    let s = setup(pool, false).await;
    let learner = s.world.learner(1).await;
    consent(&s.world, learner, Action::Grant).await;
    complete_course(&s.world, learner, 0.8).await;
    project_all(&s.pool).await;
    let registration = rows_of(&s.pool, s.config, ItemAction::Registration)
        .await
        .remove(0);
    assert_eq!(registration.course_run_id.as_deref(), Some(RUN));

    let report = Worker::new(s.pool.clone(), options())
        .turn("w1")
        .await
        .unwrap();
    assert_eq!(
        report.sent, 2,
        "the registration and the completion: {report:?}"
    );

    let received = s.lrs.received();
    let registered: Vec<&Value> = received
        .iter()
        .map(|r| &r.statement)
        .filter(|st| st["verb"]["id"] == "http://adlnet.gov/expapi/verbs/registered")
        .collect();
    assert_eq!(registered.len(), 2, "{received:#?}");
    let objects: Vec<&Value> = registered.iter().map(|st| &st["object"]["id"]).collect();
    assert_eq!(
        objects,
        [
            "https://lms.example.com/xapi/activities/course/edX+DemoX",
            &format!("https://lms.example.com/xapi/activities/courserun/{RUN}"),
        ],
        "the course first, then the run"
    );
    for statement in &registered {
        let expected = json!({
            "id": statement["id"].clone(),
            "actor": {"objectType": "Agent", "name": "learner1@example.com",
                      "mbox": "mailto:learner1@example.com"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/registered",
                     "display": {"en-US": "registered"}},
            "object": statement["object"].clone(),
            "version": "1.0.3",
        });
        assert_eq!(**statement, expected, "no result on a registration");
        let definition = &statement["object"]["definition"];
        assert_eq!(
            definition["type"],
            "http://adlnet.gov/expapi/activities/course"
        );
        assert_eq!(
            definition["extensions"]["https://lms.example.com/course/key"],
            "edX+DemoX"
        );
    }
    let ids: HashSet<String> = registered
        .iter()
        .map(|st| st["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "each statement has its own id");
    assert!(!ids.contains(&registration.item_id.to_string()));
    let keys: HashSet<String> = received
        .iter()
        .filter(|r| r.statement["verb"]["id"] == "http://adlnet.gov/expapi/verbs/registered")
        .map(|r| r.idempotency_key.clone().unwrap())
        .collect();
    assert_eq!(keys, ids, "each statement's id is its idempotency key");

    let row = rows_of(&s.pool, s.config, ItemAction::Registration)
        .await
        .remove(0);
    assert_eq!(row.status, ItemStatus::Sent);
    assert_eq!(audit(&s.pool, row.item_id).await, ["sent"]);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_registration_the_lrs_refused_halfway_is_sent_again_under_the_same_ids(pool: PgPool) {
    let s = setup(pool, false).await;
    let learner = s.world.learner(1).await;
    consent(&s.world, learner, Action::Grant).await;
    complete_course(&s.world, learner, 0.8).await;
    project_all(&s.pool).await;
    // Only the registration goes: the completion row waits aside.
    sqlx::query("UPDATE outbox_items SET status = 'held' WHERE action = 'completion'")
        .execute(&s.pool)
        .await
        .unwrap();
    // The course statement is taken, the run statement gets a 503.
    s.lrs.faults.push(Fault::Slow(Duration::ZERO));
    s.lrs.faults.push(Fault::ServerError(503));
    let worker = Worker::new(s.pool.clone(), options());
    let first = worker.turn("w1").await.unwrap();
    assert_eq!((first.failed, first.sent), (1, 0), "{first:?}");
    assert_eq!(s.lrs.received().len(), 1);

    time_passes(&s.pool).await;
    let second = worker.turn("w1").await.unwrap();
    assert_eq!(second.sent, 1, "{second:?}");
    let received = s.lrs.received();
    assert_eq!(
        received.len(),
        2,
        "the course statement is not stored twice"
    );
    let requests = s.lrs.requests();
    assert_eq!(requests.len(), 3, "course, then course and run again");
    assert_eq!(requests[0].statement, requests[1].statement);
    let row = rows_of(&s.pool, s.config, ItemAction::Registration)
        .await
        .remove(0);
    assert_eq!(audit(&s.pool, row.item_id).await, ["failed", "sent"]);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn registrations_follow_the_learner_rules(pool: PgPool) {
    let s = setup(pool, false).await;
    // Declined before enrolling: no registration.
    let declined = s.world.learner(1).await;
    consent(&s.world, declined, Action::Decline).await;
    complete_course(&s.world, declined, 0.9).await;
    // No answer yet: held until the grant.
    let later = s.world.learner(2).await;
    complete_course(&s.world, later, 0.9).await;
    project_all(&s.pool).await;
    let rows = rows_of(&s.pool, s.config, ItemAction::Registration).await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(
        (rows[0].learner_id, rows[0].status),
        (Some(later.0), ItemStatus::Held)
    );
    consent(&s.world, later, Action::Grant).await;
    project_all(&s.pool).await;
    let rows = rows_of(&s.pool, s.config, ItemAction::Registration).await;
    assert_eq!(rows[0].status, ItemStatus::Pending);

    // Leaving and enrolling again registers nothing more.
    use domain::enrollment::EnrollmentCommand::{Reenroll, Unenroll};
    let run = domain::ids::CourseRunId(RUN.into());
    let stream = domain::enrollment::enrollment_stream_id(s.world.customer, later, &run);
    let (customer_id, learner_id, course_run_id) = (s.world.customer, later, run.clone());
    for command in [
        Unenroll {
            customer_id,
            learner_id,
            course_run_id: course_run_id.clone(),
            at: Utc::now(),
        },
        Reenroll {
            customer_id,
            learner_id,
            course_run_id,
            at: Utc::now(),
        },
    ] {
        s.world
            .store
            .execute::<domain::enrollment::Enrollment>(&stream, command, &(), &meta())
            .await
            .unwrap();
    }
    project_all(&s.pool).await;
    assert_eq!(
        rows_of(&s.pool, s.config, ItemAction::Registration)
            .await
            .len(),
        1
    );
}
