//! Cornerstone completions end to end against the strict fake progress API: a learner's
//! launch recorded, the completion pushed to the launch's callback with the configuration's
//! latest session token; no launch, no push until one is recorded; an expired session retried;
//! consent refused, never sent; launch validation.

use chrono::Utc;
use domain::channel::ChannelSettings;
use domain::consent::Action;
use domain::ids::LearnerId;
use e2e_tests::{consent_required, World};
use projections::read_models::outbox::ItemStatus;
use serde_json::json;
use sqlx::PgPool;
use transmitters::cornerstone::course_id;
use transmitters::cornerstone_launch::{record, Launch, LaunchError};
use transmitters::fakes::cornerstone::FakeCornerstone;
use transmitters::fakes::{serve, Running};
use transmitters::Worker;
use uuid::Uuid;

mod transmitting;
use transmitting::*;

const CALLBACK: &str = "/services/x/content-online-content-api/v1";

struct Setup {
    world: World,
    pool: PgPool,
    fake: FakeCornerstone,
    running: Running,
    config: Uuid,
}

/// A world whose customer requires consent and a Cornerstone configuration whose base URL is
/// the fake (subdomain `127`: its host is 127.0.0.1).
async fn setup(pool: PgPool) -> Setup {
    let world = World::new(pool.clone(), consent_required()).await;
    let fake = FakeCornerstone::new("csod-key", "csod-secret");
    let running = serve(fake.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let config = configure(
        &world,
        NewConfig {
            settings: ChannelSettings::Csod {
                base_url: running.url(),
            },
            secrets: &[("client_id", "csod-key"), ("client_secret", "csod-secret")],
            chunk_size: 500,
            dry_run: false,
            idp_id: None,
        },
    )
    .await;
    project_all(&pool).await;
    Setup {
        world,
        pool,
        fake,
        running,
        config,
    }
}

fn launch(s: &Setup, learner: LearnerId, guid: &str, token: &str) -> Launch {
    Launch {
        customer_id: s.world.customer.0,
        learner_id: learner.0,
        course_key: "edX+DemoX".into(),
        user_guid: guid.into(),
        callback_url: CALLBACK.into(),
        session_token: token.into(),
        subdomain: "127".into(),
        at: Utc::now(),
    }
}

async fn launched(s: &Setup, learner: LearnerId, guid: &str, token: &str) {
    s.fake.issue_token(token);
    record(
        &s.world.store,
        &secret_box(),
        &launch(s, learner, guid, token),
    )
    .await
    .unwrap();
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_completion_reaches_the_launch_callback_as_edx_sends_it(pool: PgPool) {
    let s = setup(pool).await;
    let learner = completing_learners(&s.world, 1, 1).await[0];
    project_all(&s.pool).await;
    launched(&s, learner, "guid-1", "token-1").await;
    // A later launch by another learner: its token is the configuration's latest.
    let other = s.world.learner(2).await;
    launched(&s, other, "guid-2", "token-2").await;

    let report = Worker::new(s.pool.clone(), options())
        .turn("w1")
        .await
        .unwrap();
    assert_eq!(report.sent, 1, "{report:?}");
    let received = s.fake.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, format!("{CALLBACK}/progress"));
    assert_eq!(received[0].session_token, "token-2");
    let row = learner_rows(&s.pool, s.config).await.remove(0);
    let completed_at =
        chrono::DateTime::parse_from_rfc3339(row.payload["completed_at"].as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc)
            .format("%Y-%m-%dT%H:%M:%S+00:00")
            .to_string();
    assert_eq!(
        received[0].record,
        json!({
            "completionDate": completed_at,
            "courseId": course_id("edX+DemoX"),
            "sessionToken": "token-1",
            "status": "Completed",
            "successStatus": "Pass",
            "userGuid": "guid-1",
        })
    );
    assert_eq!(
        received[0].idempotency_key.as_deref(),
        Some(row.item_id.to_string().as_str())
    );
    assert_eq!(
        s.fake.status("guid-1", "edX+DemoX").as_deref(),
        Some("Completed")
    );
    assert_eq!(row.status, ItemStatus::Sent);
    assert_eq!(audit(&s.pool, row.item_id).await, ["sent"]);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn without_a_launch_nothing_is_pushed_until_one_is_recorded(pool: PgPool) {
    let s = setup(pool).await;
    let learner = completing_learners(&s.world, 1, 1).await[0];
    project_all(&s.pool).await;
    let worker = Worker::new(s.pool.clone(), options());
    let first = worker.turn("w1").await.unwrap();
    assert_eq!(first.sent, 0, "{first:?}");
    assert!(s.fake.received().is_empty());
    let row = learner_rows(&s.pool, s.config).await.remove(0);
    assert_eq!((row.status, row.attempts), (ItemStatus::Pending, 1));
    assert!(row.last_error.unwrap().contains("no Cornerstone launch"));

    launched(&s, learner, "guid-1", "token-1").await;
    time_passes(&s.pool).await;
    assert_eq!(worker.turn("w1").await.unwrap().sent, 1);
    assert_eq!(s.fake.received().len(), 1);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn an_expired_session_is_retried_with_the_next_launch_token(pool: PgPool) {
    let s = setup(pool).await;
    let learner = completing_learners(&s.world, 1, 1).await[0];
    project_all(&s.pool).await;
    launched(&s, learner, "guid-1", "token-1").await;
    s.fake.expire_token("token-1");
    let worker = Worker::new(s.pool.clone(), options());
    let first = worker.turn("w1").await.unwrap();
    assert_eq!(first.failed, 1, "{first:?}");
    let row = learner_rows(&s.pool, s.config).await.remove(0);
    assert!(row.last_error.as_deref().unwrap().starts_with("HTTP 401"));
    assert!(
        !row.last_error.as_deref().unwrap().contains("token-1"),
        "the token stays out of the error"
    );

    // The learner launches again: a fresh session.
    launched(&s, learner, "guid-1", "token-3").await;
    time_passes(&s.pool).await;
    assert_eq!(worker.turn("w1").await.unwrap().sent, 1);
    assert_eq!(s.fake.received()[0].session_token, "token-3");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_learner_who_declined_is_never_pushed(pool: PgPool) {
    let s = setup(pool).await;
    let declined = s.world.learner(1).await;
    consent(&s.world, declined, Action::Decline).await;
    complete_course(&s.world, declined, 0.9).await;
    launched(&s, declined, "guid-1", "token-1").await;
    project_all(&s.pool).await;
    assert!(learner_rows(&s.pool, s.config).await.is_empty());
    Worker::new(s.pool.clone(), options())
        .turn("w1")
        .await
        .unwrap();
    assert!(s.fake.received().is_empty());
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn launches_are_checked_and_matched_to_a_configuration(pool: PgPool) {
    let s = setup(pool).await;
    let learner = s.world.learner(1).await;
    let mut bad = launch(&s, learner, "guid-1", "token-1");
    bad.callback_url = format!("@evil.example{CALLBACK}");
    let error = record(&s.world.store, &secret_box(), &bad)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, LaunchError::Invalid(i) if i.field == "callbackUrl"),
        "{error:?}"
    );
    let mut elsewhere = launch(&s, learner, "guid-1", "token-1");
    elsewhere.subdomain = "other".into();
    let error = record(&s.world.store, &secret_box(), &elsewhere)
        .await
        .unwrap_err();
    assert!(
        matches!(error, LaunchError::NoConfiguration(_)),
        "{error:?}"
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM cornerstone_launches")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);

    // The session token is sealed: it is nowhere in the table as text.
    launched(&s, learner, "guid-1", "token-in-clear").await;
    let found: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM cornerstone_launches
          WHERE position(convert_to('token-in-clear', 'UTF8') in token_ciphertext) > 0",
    )
    .fetch_one(&s.pool)
    .await
    .unwrap();
    assert_eq!(found, 0);
    // Erasing the learner deletes their launches.
    store::directory::erase(&s.pool, learner).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM cornerstone_launches")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    drop(s.running);
}
