//! The Degreed channel end to end against the strict fake: courses created, found by external
//! id and updated, deleted; a create Degreed already holds (409) becoming an update;
//! completions with a percentile; "Invalid user identifier" unlinking the learner; the token
//! cached and refreshed once on 401.

use chrono::Utc;
use domain::channel::ChannelSettings;
use domain::content::{discovery, ContentCommand, ContentItem, ContentType};
use e2e_tests::{consent_required, meta, project, World, RUN};
use projections::read_models::learners::{memberships_of_learner, Learners, MembershipStatus};
use projections::read_models::outbox::{items_of_config, ItemKind, ItemStatus};
use serde_json::{json, Value};
use sqlx::PgPool;
use transmitters::fakes::degreed::FakeDegreed;
use transmitters::fakes::{serve, Running};
use transmitters::Worker;
use uuid::Uuid;

mod transmitting;
use transmitting::*;

struct Setup {
    world: World,
    pool: PgPool,
    fake: FakeDegreed,
    _running: Running,
    config: Uuid,
}

async fn setup(pool: PgPool) -> Setup {
    let world = World::new(pool.clone(), consent_required()).await;
    let fake = FakeDegreed::new("degreed-id", "degreed-secret");
    let running = serve(fake.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let config = configure(
        &world,
        NewConfig {
            settings: ChannelSettings::Degreed2 {
                base_url: running.url(),
                token_fetch_base_url: None,
            },
            secrets: &[
                ("client_id", "degreed-id"),
                ("client_secret", "degreed-secret"),
            ],
            chunk_size: 1,
            dry_run: false,
            idp_id: None,
        },
    )
    .await;
    Setup {
        world,
        pool,
        fake,
        _running: running,
        config,
    }
}

async fn publish_run(world: &World, title: &str) {
    let doc: Value =
        serde_json::from_str(include_str!("../../fixtures/discovery/course_run.json")).unwrap();
    let mut metadata = discovery::from_discovery(ContentType::CourseRun, &doc).unwrap();
    metadata.title = title.to_string();
    let stream = domain::content::content_stream_id(ContentType::CourseRun, RUN);
    let at = Utc::now();
    world
        .store
        .execute::<ContentItem>(
            &stream,
            ContentCommand::PublishContent { metadata, at },
            &(),
            &meta(),
        )
        .await
        .unwrap();
}

async fn retire_run(world: &World) {
    let stream = domain::content::content_stream_id(ContentType::CourseRun, RUN);
    let retire = ContentCommand::RetireContent {
        content_type: ContentType::CourseRun,
        key: RUN.to_string(),
        at: Utc::now(),
    };
    world
        .store
        .execute::<ContentItem>(&stream, retire, &(), &meta())
        .await
        .unwrap();
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_course_is_created_updated_and_deleted(pool: PgPool) {
    let s = setup(pool).await;
    let worker = Worker::new(s.pool.clone(), options());
    project_all(&s.pool).await;
    assert_eq!(worker.turn("w").await.unwrap().sent, 1);
    let held = s.fake.courses();
    let course = &held[RUN];
    assert_eq!(course["language"], "en");
    assert_eq!(course["duration-type"], "Hours");
    assert_eq!(course["obsolete"], false);
    assert_eq!(course["cost-unit-type"], "USD");
    let title = course["title"].as_str().unwrap().to_string();

    publish_run(&s.world, "Renamed Course").await;
    project_all(&s.pool).await;
    assert_eq!(worker.turn("w").await.unwrap().sent, 1);
    assert_eq!(s.fake.courses()[RUN]["title"], "Renamed Course");
    assert_ne!(title, "Renamed Course");

    retire_run(&s.world).await;
    project_all(&s.pool).await;
    assert_eq!(worker.turn("w").await.unwrap().sent, 1);
    assert!(s.fake.courses().is_empty());
    let methods: Vec<String> = s.fake.received().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["POST", "PATCH", "DELETE"]);
    assert_eq!(s.fake.token_requests(), 1, "the token is cached");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_create_degreed_already_holds_becomes_an_update(pool: PgPool) {
    let s = setup(pool).await;
    let worker = Worker::new(s.pool.clone(), options());
    project_all(&s.pool).await;
    worker.turn("w").await.unwrap();
    // The remote keeps the course, the service forgets it sent it (a rebuild of the outbox).
    sqlx::query("DELETE FROM outbox_remote_content")
        .execute(&s.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE outbox_items SET status = 'pending', next_attempt_at = now()")
        .execute(&s.pool)
        .await
        .unwrap();
    assert_eq!(worker.turn("w").await.unwrap().sent, 1);
    let methods: Vec<String> = s.fake.received().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["POST", "PATCH"], "the second create met a 409");
    assert_eq!(s.fake.courses().len(), 1);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_completion_is_sent_with_its_percentile(pool: PgPool) {
    let s = setup(pool).await;
    s.fake.know_user("learner1@example.com");
    completing_learners(&s.world, 1, 1).await;
    project_all(&s.pool).await;
    let report = Worker::new(s.pool.clone(), options())
        .turn("w")
        .await
        .unwrap();
    assert_eq!(report.sent, 2, "{report:?}");
    let completions = s.fake.completions();
    assert_eq!(completions.len(), 1);
    let attributes = &completions[0]["data"]["attributes"];
    let completed_at = attributes["completed-at"].as_str().unwrap();
    assert_eq!(
        completed_at.len(),
        "2021-06-21T12:58:17".len(),
        "{completed_at}"
    );
    assert_eq!(
        completions[0],
        json!({"data": {"attributes": {
            "completed-at": completed_at,
            "content-id": "edX+DemoX",
            "content-id-type": "externalId",
            "content-type": "course",
            "percentile": 80.0,
            "user-id": "learner1@example.com",
            "user-identifier-type": "Email",
        }}})
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn an_unknown_user_is_unlinked_and_the_row_dead_lettered(pool: PgPool) {
    let s = setup(pool).await;
    let learner = completing_learners(&s.world, 1, 1).await[0];
    project_all(&s.pool).await;
    Worker::new(s.pool.clone(), options())
        .turn("w")
        .await
        .unwrap();
    let row = items_of_config(&s.pool, s.config)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.kind == ItemKind::Learner)
        .unwrap();
    assert_eq!(row.status, ItemStatus::Dead);
    assert_eq!(audit(&s.pool, row.item_id).await, ["dead_lettered"]);
    project(&s.pool, &Learners).await;
    let memberships = memberships_of_learner(&s.pool, learner).await.unwrap();
    assert_eq!(memberships[0].state, MembershipStatus::Unlinked);
    assert!(memberships[0].is_relinkable);
    let excerpt: Option<String> =
        sqlx::query_scalar("SELECT last_excerpt FROM transmission_items WHERE item_id = $1")
            .bind(row.item_id)
            .fetch_one(&s.pool)
            .await
            .unwrap();
    let excerpt = excerpt.unwrap();
    assert!(excerpt.contains("Invalid user identifier"), "{excerpt}");
    assert!(!excerpt.contains("learner1@example.com"), "{excerpt}");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_revoked_token_is_refreshed_once(pool: PgPool) {
    let s = setup(pool).await;
    s.fake.know_user("learner1@example.com");
    let worker = Worker::new(s.pool.clone(), options());
    project_all(&s.pool).await;
    worker.turn("w").await.unwrap();
    assert_eq!(s.fake.token_requests(), 1);
    s.fake.revoke_tokens();
    completing_learners(&s.world, 1, 1).await;
    project_all(&s.pool).await;
    let report = worker.turn("w").await.unwrap();
    assert_eq!(report.sent, 1, "{report:?}");
    assert_eq!(s.fake.token_requests(), 2);
    assert_eq!(s.fake.completions().len(), 1);
}
