//! Cornerstone's pull endpoint: pending content rows served once, counted as sent only when
//! the answer was read to the end, `If-Modified-Since`, and the edX error answers.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use domain::channel::ChannelSettings;
use e2e_tests::{consent_required, World, RUN};
use projections::read_models::outbox::{items_of_config, ItemKind, ItemStatus};
use serde_json::Value;
use sqlx::PgPool;
use tower::ServiceExt;
use transmitters::cornerstone::{course_id, router};
use transmitters::Worker;
use uuid::Uuid;

mod transmitting;
use transmitting::*;

async fn setup(pool: &PgPool) -> (World, Uuid) {
    let world = World::new(pool.clone(), consent_required()).await;
    let config = configure(
        &world,
        NewConfig {
            settings: ChannelSettings::Csod {
                base_url: "https://acme.csod.com".into(),
            },
            secrets: &[],
            chunk_size: 500,
            dry_run: false,
            idp_id: None,
        },
    )
    .await;
    project_all(pool).await;
    (world, config)
}

async fn get(pool: &PgPool, query: &str, since: Option<&str>) -> (StatusCode, Value) {
    let mut request = Request::get(format!("/cornerstone/course-list{query}"));
    if let Some(since) = since {
        request = request.header(header::IF_MODIFIED_SINCE, since);
    }
    let response = router(pool.clone())
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

async fn content_status(pool: &PgPool, config: Uuid) -> ItemStatus {
    items_of_config(pool, config)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.kind == ItemKind::Content)
        .unwrap()
        .status
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn pending_content_is_served_once(pool: PgPool) {
    let (world, config) = setup(&pool).await;
    let query = format!("?ciid={}", world.customer);
    let (status, body) = get(&pool, &query, None).await;
    assert_eq!(status, StatusCode::OK);
    let courses = body.as_array().unwrap();
    assert_eq!(courses.len(), 1);
    let course = &courses[0];
    assert_eq!(course["ID"], course_id(RUN));
    assert_eq!(course["IsActive"], true);
    assert_eq!(course["IsMobile"], true);
    assert!(course["Title"].is_string() && course["Description"].is_string());
    assert!(course["LastModifiedUTC"].as_str().unwrap().ends_with('Z'));
    assert_eq!(course["Languages"], serde_json::json!(["en-US"]));
    assert_eq!(content_status(&pool, config).await, ItemStatus::Sent);

    let (_, again) = get(&pool, &query, None).await;
    assert_eq!(
        again,
        serde_json::json!([]),
        "sent rows are not served again"
    );
    let item = items_of_config(&pool, config).await.unwrap()[0].item_id;
    assert_eq!(audit(&pool, item).await, ["sent"]);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn an_answer_not_read_to_the_end_is_served_again(pool: PgPool) {
    let (world, config) = setup(&pool).await;
    let request = Request::get(format!("/cornerstone/course-list?ciid={}", world.customer))
        .body(Body::empty())
        .unwrap();
    let response = router(pool.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    drop(response);
    assert_eq!(content_status(&pool, config).await, ItemStatus::Leased);
    sqlx::query("UPDATE outbox_items SET lease_expires_at = now()")
        .execute(&pool)
        .await
        .unwrap();
    let (_, body) = get(&pool, &format!("?ciid={}", world.customer), None).await;
    assert_eq!(body.as_array().unwrap().len(), 1);
    assert_eq!(content_status(&pool, config).await, ItemStatus::Sent);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn workers_leave_cornerstone_content_to_the_pull(pool: PgPool) {
    let (world, config) = setup(&pool).await;
    let report = Worker::new(pool.clone(), options())
        .turn("w")
        .await
        .unwrap();
    assert_eq!(report.released, 1, "{report:?}");
    assert_eq!(content_status(&pool, config).await, ItemStatus::Pending);
    let (_, body) = get(&pool, &format!("?ciid={}", world.customer), None).await;
    assert_eq!(body.as_array().unwrap().len(), 1, "still served");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn if_modified_since_lifts_older_items_to_its_date(pool: PgPool) {
    let (world, _) = setup(&pool).await;
    let (_, body) = get(
        &pool,
        &format!("?ciid={}", world.customer),
        Some("Tue, 01 Jan 2999 00:00:00 GMT"),
    )
    .await;
    assert_eq!(body[0]["LastModifiedUTC"], "2999-01-01T00:00:00.000000Z");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_missing_or_unknown_ciid_is_answered_as_edx_does(pool: PgPool) {
    let (status, body) = get(&pool, "", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        "Cornerstone course list API expects ciid parameter."
    );
    let (status, body) = get(&pool, &format!("?ciid={}", Uuid::new_v4()), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["message"],
        "No active Cornerstone configuration found for given ciid."
    );
}

#[test]
fn long_course_keys_become_stable_uuids() {
    let long = "course-v1:SomeUniversity+AVeryLongCourseNumber2024+Run_Autumn";
    assert!(long.len() > 50);
    let id = course_id(long);
    assert_eq!(id, course_id(long));
    assert!(Uuid::try_parse(&id).is_ok());
    assert_eq!(course_id("edX+DemoX"), "edX+DemoX");
}
