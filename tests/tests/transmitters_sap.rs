//! The SAP SuccessFactors channel end to end against the strict fake: OCN course imports for
//! create, update and delete (`INACTIVE`); completions on the learner's own token, or on the
//! admin token with `prevent_self_submit_grades`; "user account is inactive" unlinking the
//! learner; the searchStudent sync unlinking inactive students; a 429 retried after its
//! `Retry-After`; declined or revoked consent never reaching SAP.

use chrono::Utc;
use domain::channel::{ChannelSettings, SapUserType};
use domain::consent::Action;
use domain::content::{discovery, ContentCommand, ContentItem, ContentType};
use domain::ids::LearnerId;
use e2e_tests::{consent_required, meta, project, World, RUN};
use projections::read_models::consent::ConsentProjection;
use projections::read_models::learners::{memberships_of_learner, Learners, MembershipStatus};
use projections::read_models::outbox::{items_of_config, ItemKind, ItemStatus};
use serde_json::{json, Value};
use sqlx::PgPool;
use transmitters::fakes::sap::FakeSap;
use transmitters::fakes::{serve, Fault, Running};
use transmitters::sap::{ADMIN_COMPLETION_PATH, LEARNER_COMPLETION_PATH};
use transmitters::Worker;
use uuid::Uuid;

mod transmitting;
use transmitting::*;

const IDP: &str = "acme-idp";
const API_USER: &str = "sap-admin";

struct Setup {
    world: World,
    pool: PgPool,
    fake: FakeSap,
    _running: Running,
    config: Uuid,
}

/// A SAP configuration against a fresh fake; `prevent_self_submit_grades` also switches
/// `transmit_total_hours` on.
async fn setup(pool: PgPool, prevent_self_submit_grades: bool) -> Setup {
    let world = World::new(pool.clone(), consent_required()).await;
    let fake = FakeSap::new("sap-id", "sap-secret", "acme-co", API_USER);
    let running = serve(fake.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let config = configure(
        &world,
        NewConfig {
            settings: ChannelSettings::Sap {
                base_url: format!("{}/", running.url()),
                company_id: "acme-co".into(),
                user_id: API_USER.into(),
                user_type: SapUserType::Admin,
                provider_id: "EDX".into(),
                additional_locales: vec!["Spanish".into()],
                transmit_total_hours: prevent_self_submit_grades,
                prevent_self_submit_grades,
            },
            secrets: &[("client_id", "sap-id"), ("client_secret", "sap-secret")],
            chunk_size: 1,
            dry_run: false,
            idp_id: Some(IDP),
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

/// A learner (LMS id `n`) whose id at the identity provider, their SAP id, is `EMP<n>`,
/// linked to the world's customer.
async fn sap_learner(world: &World, n: i64) -> LearnerId {
    let email = format!("learner{n}@example.com");
    let user = store::directory::LmsUser {
        lms_user_id: n,
        username: format!("learner{n}"),
        email: email.clone(),
        sso_ids: vec![(IDP.into(), format!("EMP{n}"))],
    };
    let learner = store::services::learners::register(&world.store, &user, &meta())
        .await
        .unwrap()
        .learner_id;
    store::services::learners::link_by_email(&world.store, world.customer, &email, &meta())
        .await
        .unwrap();
    learner
}

/// A SAP learner who consents and completes the course.
async fn completing_sap_learner(world: &World, n: i64) -> LearnerId {
    let learner = sap_learner(world, n).await;
    consent(world, learner, Action::Grant).await;
    complete_course(world, learner, 0.8).await;
    learner
}

fn millis(at: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(at)
        .unwrap()
        .timestamp_millis()
}

/// The OCN course edX builds from the discovery fixture's run.
fn expected_course(title: &str, status: &str) -> Value {
    let launch = "https://fake.url";
    let shown = format!("{title} (Starts: February 2013)");
    let description = "Pacing: Instructor-Paced. Starts: February 2013, Ends: December 3000. \
                       Lorem ipsum dolor sit amet, consectetur adipiscing elit.";
    json!({
        "content": [{
            "contentID": RUN, "contentTitle": title, "launchType": 3, "launchURL": launch,
            "mobileEnabled": true, "mobileLaunchURL": launch, "providerID": "EDX",
        }],
        "courseID": RUN,
        "description": [
            {"locale": "English", "value": description},
            {"locale": "Spanish", "value": description},
        ],
        "price": [{"currency": "USD", "value": 0.0}],
        "providerID": "EDX",
        "revisionNumber": 1,
        "schedule": [{
            "active": true,
            "endDate": millis("3000-12-31T18:00:00Z"),
            "startDate": millis("2013-02-05T05:00:00Z"),
        }],
        "status": status,
        "thumbnailURI": "http://edx.devstack.lms:18000/asset-v1:edX+DemoX+Demo_Course+type@asset+block@images_course_image.jpg",
        "title": [
            {"locale": "English", "value": shown},
            {"locale": "Spanish", "value": shown},
        ],
    })
}

async fn publish_run(world: &World, title: &str) {
    let doc: Value =
        serde_json::from_str(include_str!("../../fixtures/discovery/course_run.json")).unwrap();
    let mut metadata = discovery::from_discovery(ContentType::CourseRun, &doc).unwrap();
    metadata.title = title.to_string();
    let stream = domain::content::content_stream_id(ContentType::CourseRun, RUN);
    let publish = ContentCommand::PublishContent {
        metadata,
        at: Utc::now(),
    };
    world
        .store
        .execute::<ContentItem>(&stream, publish, &(), &meta())
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

async fn content_row(pool: &PgPool, config: Uuid) -> Uuid {
    items_of_config(pool, config)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.kind == ItemKind::Content)
        .unwrap()
        .item_id
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_course_is_imported_updated_and_made_inactive(pool: PgPool) {
    let s = setup(pool, false).await;
    let worker = Worker::new(s.pool.clone(), options());
    project_all(&s.pool).await;
    let first_row = content_row(&s.pool, s.config).await;
    assert_eq!(worker.turn("w").await.unwrap().sent, 1);
    let title = "edX Demonstration Course";
    let received = s.fake.received();
    assert_eq!(
        received[0].body,
        json!({"ocnCourses": [expected_course(title, "ACTIVE")]})
    );
    assert_eq!(
        received[0].idempotency_key,
        Some(first_row.to_string()),
        "the row's item id is the idempotency key"
    );

    publish_run(&s.world, "Renamed Course").await;
    project_all(&s.pool).await;
    assert_eq!(worker.turn("w").await.unwrap().sent, 1);
    assert_eq!(
        s.fake.courses()[RUN],
        expected_course("Renamed Course", "ACTIVE")
    );

    retire_run(&s.world).await;
    project_all(&s.pool).await;
    assert_eq!(worker.turn("w").await.unwrap().sent, 1);
    assert_eq!(
        s.fake.courses()[RUN],
        expected_course("Renamed Course", "INACTIVE"),
        "a delete is the same upsert with status INACTIVE"
    );
    let received = s.fake.received();
    assert_eq!(received.len(), 3);
    assert!(received.iter().all(|r| r.token_user == API_USER));
    assert_eq!(
        s.fake.token_users(),
        [API_USER],
        "the admin token is cached"
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn completions_go_on_each_learners_own_token(pool: PgPool) {
    let s = setup(pool, false).await;
    completing_sap_learner(&s.world, 1).await;
    completing_sap_learner(&s.world, 2).await;
    project_all(&s.pool).await;
    let report = Worker::new(s.pool.clone(), options())
        .turn("w")
        .await
        .unwrap();
    assert_eq!(report.sent, 3, "{report:?}");
    let mut events = s.fake.learning_events();
    events.sort_by(|a, b| a.token_user.cmp(&b.token_user));
    assert_eq!(events.len(), 2);
    for (event, user) in events.iter().zip(["EMP1", "EMP2"]) {
        assert_eq!(event.path, format!("/{LEARNER_COMPLETION_PATH}"));
        assert_eq!(event.token_user, user, "the learner's own token");
        let at = event.body["completedTimestamp"].as_i64().unwrap();
        let now = Utc::now().timestamp_millis();
        assert!(at < now && at > now - 3 * 86_400_000, "{at} is epoch ms");
        assert_eq!(
            event.body,
            json!({
                "completedTimestamp": at, "courseCompleted": "true", "courseID": "edX+DemoX",
                "creditHours": 0.0, "grade": "Pass", "providerID": "EDX", "totalHours": 0.0,
                "userID": user,
            })
        );
    }
    let mut tokens = s.fake.token_users();
    tokens.sort();
    assert_eq!(tokens, ["EMP1", "EMP2", API_USER], "one token per learner");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn prevent_self_submit_grades_sends_a_boolean_on_the_admin_path(pool: PgPool) {
    let s = setup(pool, true).await;
    completing_sap_learner(&s.world, 1).await;
    project_all(&s.pool).await;
    let report = Worker::new(s.pool.clone(), options())
        .turn("w")
        .await
        .unwrap();
    assert_eq!(report.sent, 2, "{report:?}");
    let events = s.fake.learning_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].path, format!("/{ADMIN_COMPLETION_PATH}"));
    assert_eq!(events[0].token_user, API_USER);
    let at = events[0].body["completedTimestamp"].as_i64().unwrap();
    assert_eq!(
        events[0].body,
        json!({
            "completedTimestamp": at, "courseCompleted": true, "courseID": "edX+DemoX",
            "creditHours": 6.0, "grade": "Pass", "providerID": "EDX", "totalHours": 6.0,
            "userID": "EMP1",
        }),
        "transmit_total_hours sends the run's estimated hours"
    );
    // The course and the completion go out at once, so each may fetch the admin token.
    assert!(
        s.fake.token_users().iter().all(|u| u == API_USER),
        "no learner token: {:?}",
        s.fake.token_users()
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn an_inactive_user_is_unlinked_and_the_row_dead_lettered(pool: PgPool) {
    let s = setup(pool, false).await;
    s.fake.deactivate("EMP1");
    let learner = completing_sap_learner(&s.world, 1).await;
    project_all(&s.pool).await;
    Worker::new(s.pool.clone(), options())
        .turn("w")
        .await
        .unwrap();
    let row = learner_rows(&s.pool, s.config).await.remove(0);
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
    assert!(excerpt.contains("user account is inactive"), "{excerpt}");
    assert!(!excerpt.contains("EMP1"), "{excerpt}");
    assert!(s.fake.learning_events().is_empty());
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn the_sync_pages_inactive_students_and_unlinks_them(pool: PgPool) {
    let s = setup(pool, false).await;
    let active = sap_learner(&s.world, 1).await;
    let inactive = sap_learner(&s.world, 2).await;
    s.fake.deactivate("EMP2");
    // Students of other companies' learners, enough for a second page.
    for n in 0..600 {
        s.fake.deactivate(&format!("OTHER{n:04}"));
    }
    project(&s.pool, &Learners).await;
    project_all(&s.pool).await;
    let worker = Worker::new(s.pool.clone(), options());
    let report = worker.sync_sap_inactive().await.unwrap();
    assert_eq!(
        (
            report.configurations,
            report.inactive,
            report.unlinked,
            report.failed
        ),
        (1, 601, 1, 0),
        "{report:?}"
    );
    let pages: Vec<Value> = s
        .fake
        .received()
        .into_iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.body)
        .collect();
    assert_eq!(
        pages,
        [
            json!({"$top": 500, "$skip": 0}),
            json!({"$top": 500, "$skip": 500})
        ]
    );
    project(&s.pool, &Learners).await;
    let gone = memberships_of_learner(&s.pool, inactive).await.unwrap();
    assert_eq!(gone[0].state, MembershipStatus::Unlinked);
    assert!(gone[0].is_relinkable);
    let kept = memberships_of_learner(&s.pool, active).await.unwrap();
    assert_eq!(kept[0].state, MembershipStatus::Linked);

    let again = worker.sync_sap_inactive().await.unwrap();
    assert_eq!(
        again.unlinked, 0,
        "an unlinked learner is not unlinked twice"
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn the_sync_skips_its_turn_while_another_process_syncs(pool: PgPool) {
    let s = setup(pool, false).await;
    let inactive = sap_learner(&s.world, 2).await;
    s.fake.deactivate("EMP2");
    project(&s.pool, &Learners).await;
    project_all(&s.pool).await;
    // Another process's sync holds the lock.
    let mut other = s.pool.acquire().await.unwrap().detach();
    let lock = "hashtextextended('sap-inactive-sync', 0)";
    let held: bool = sqlx::query_scalar(&format!("SELECT pg_try_advisory_lock({lock})"))
        .fetch_one(&mut other)
        .await
        .unwrap();
    assert!(held);
    let worker = Worker::new(s.pool.clone(), options());
    let skipped = worker.sync_sap_inactive().await.unwrap();
    assert!(
        skipped.skipped && skipped.configurations == 0,
        "{skipped:?}"
    );
    assert!(s.fake.received().is_empty(), "SAP was not asked");

    sqlx::query(&format!("SELECT pg_advisory_unlock({lock})"))
        .execute(&mut other)
        .await
        .unwrap();
    let ran = worker.sync_sap_inactive().await.unwrap();
    assert_eq!(
        (ran.skipped, ran.configurations, ran.unlinked),
        (false, 1, 1),
        "{ran:?}"
    );
    project(&s.pool, &Learners).await;
    let gone = memberships_of_learner(&s.pool, inactive).await.unwrap();
    assert_eq!(gone[0].state, MembershipStatus::Unlinked);
    // The lock is released after a sync: the next one runs too.
    let again = worker.sync_sap_inactive().await.unwrap();
    assert!(!again.skipped && again.configurations == 1, "{again:?}");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_429_is_retried_after_its_retry_after(pool: PgPool) {
    let s = setup(pool, false).await;
    s.fake
        .faults
        .push(Fault::TooManyRequests { retry_after: 7 });
    let worker = Worker::new(s.pool.clone(), options());
    project_all(&s.pool).await;
    let report = worker.turn("w").await.unwrap();
    assert_eq!(report.failed, 1, "{report:?}");
    let row = items_of_config(&s.pool, s.config)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.kind == ItemKind::Content)
        .unwrap();
    let wait = row.next_attempt_at - Utc::now();
    assert!(
        wait > chrono::Duration::seconds(5) && wait <= chrono::Duration::seconds(8),
        "{wait}"
    );
    assert!(s.fake.courses().is_empty());
    assert_eq!(worker.turn("w").await.unwrap().claimed, 0, "not due yet");
    time_passes(&s.pool).await;
    assert_eq!(worker.turn("w").await.unwrap().sent, 1);
    assert_eq!(s.fake.courses()[RUN]["status"], "ACTIVE");
    assert_eq!(audit(&s.pool, row.item_id).await, ["failed", "sent"]);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn declined_or_revoked_consent_never_reaches_sap(pool: PgPool) {
    let s = setup(pool, false).await;
    let declining = sap_learner(&s.world, 1).await;
    consent(&s.world, declining, Action::Decline).await;
    complete_course(&s.world, declining, 0.9).await;
    let revoking = completing_sap_learner(&s.world, 2).await;
    project_all(&s.pool).await;
    // The revocation reaches the consent read model after the row was queued.
    consent(&s.world, revoking, Action::Revoke).await;
    project(&s.pool, &ConsentProjection).await;
    let report = Worker::new(s.pool.clone(), options())
        .turn("w")
        .await
        .unwrap();
    assert_eq!(report.sent, 1, "the course only: {report:?}");
    assert!(s.fake.learning_events().is_empty());
    assert!(
        !s.fake.token_users().iter().any(|u| u.starts_with("EMP")),
        "no learner token asked either"
    );
}

/// The fake's own strictness: what the client must never send is refused.
#[tokio::test]
async fn the_fake_refuses_what_sap_refuses() {
    let fake = FakeSap::new("sap-id", "sap-secret", "acme-co", API_USER);
    let running = serve(fake.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let token_url = format!("{}/learning/oauth-api/rest/v1/token", running.url());
    let scope = json!({"grant_type": "client_credentials", "scope": {
        "companyId": "acme-co", "resourceType": "learning_public_api",
        "userId": "EMP1", "userType": "user"}});
    let wrong_secret = http
        .post(&token_url)
        .basic_auth("sap-id", Some("nope"))
        .json(&scope)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_secret.status(), 401);
    let token: Value = http
        .post(&token_url)
        .basic_auth("sap-id", Some("sap-secret"))
        .json(&scope)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["expires_in"], 1800);
    let token = token["access_token"].as_str().unwrap();
    let event = |completed: Value, at: i64, user: &str| {
        json!({"completedTimestamp": at, "courseCompleted": completed, "courseID": "edX+DemoX",
               "creditHours": 0.0, "grade": "Pass", "providerID": "EDX", "totalHours": 0.0,
               "userID": user})
    };
    let now = Utc::now().timestamp_millis();
    let url = format!("{}/{LEARNER_COMPLETION_PATH}", running.url());
    for (body, why) in [
        (
            event(json!(true), now, "EMP1"),
            "a boolean on the learner path",
        ),
        (
            event(json!("true"), now + 86_400_000, "EMP1"),
            "a future timestamp",
        ),
        (
            event(json!("true"), now, "EMP2"),
            "another user's completion",
        ),
    ] {
        let answer = http
            .post(&url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            answer.status().is_client_error(),
            "{why}: {}",
            answer.status()
        );
        let error: Value = answer.json().await.unwrap();
        assert!(error["error"]["message"].is_string(), "{why}: OData error");
    }
    let admin_only = format!("{}/{ADMIN_COMPLETION_PATH}", running.url());
    let answer = http
        .post(&admin_only)
        .bearer_auth(token)
        .json(&event(json!(true), now, "EMP1"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 403, "a learner token on the admin path");
    let accepted = http
        .post(&url)
        .bearer_auth(token)
        .json(&event(json!("true"), now, "EMP1"))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);
    assert_eq!(fake.learning_events().len(), 1);
}
