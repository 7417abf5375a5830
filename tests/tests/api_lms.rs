//! LMS ingestion over HTTP: discovery JSON as-is, learners, enrollment and completion facts.

use e2e_tests::api::{admin_of, lms, send_at, Server};
use e2e_tests::{consent_not_required, World, RUN};
use reqwest::Method;
use serde_json::{json, Value};

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../fixtures/discovery/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn discovery_json_is_ingested_as_is_and_bad_batches_write_nothing(pool: sqlx::PgPool) {
    let server = Server::start(pool).await;
    let batch = json!({
        "courses": [fixture("course.json")],
        "course_runs": [fixture("course_run.json")],
        "programs": [fixture("program.json")],
    });
    let (status, body) = server.post("/api/v1/lms/content", &lms(), &batch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["changed"].clone(), body["unchanged"].clone()),
        (json!(3), json!(0))
    );
    let (_, again) = server.post("/api/v1/lms/content", &lms(), &batch).await;
    assert_eq!(
        (again["changed"].clone(), again["unchanged"].clone()),
        (json!(0), json!(3))
    );

    let head = server.event_count().await;
    let mut broken = fixture("course_run.json");
    broken.as_object_mut().unwrap().remove("key");
    let bad = json!({"courses": [fixture("course.json")], "course_runs": [broken]});
    let (status, problem) = server.post("/api/v1/lms/content", &lms(), &bad).await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["errors"][0]["field"]
            .as_str()
            .unwrap()
            .starts_with("course_runs[0]"),
        "{problem}"
    );
    assert_eq!(server.event_count().await, head);

    let admin = admin_of(uuid::Uuid::new_v4());
    assert_eq!(
        server.post("/api/v1/lms/content", &admin, &batch).await.0,
        403
    );
    let (status, _) = server
        .post("/api/v1/lms/content", &lms(), &json!({"coursez": []}))
        .await;
    assert_eq!(status, 400);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn enrollment_and_grade_facts_reach_the_report(pool: sqlx::PgPool) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let server = Server::start(pool).await;
    let learner = json!({"lms_user_id": 7, "username": "learner7", "email": "learner7@example.com",
                         "sso_ids": {"acme-idp": "L-7"}});
    let (status, registered) = server.post("/api/v1/lms/learners", &lms(), &learner).await;
    assert_eq!(status, 200, "{registered}");
    store::services::learners::link_by_email(
        &world.store,
        world.customer,
        "learner7@example.com",
        &e2e_tests::meta(),
    )
    .await
    .unwrap();

    let fact =
        json!({"lms_user_id": 7, "course_run_id": RUN, "mode": "verified", "is_active": true});
    let (status, body) = server.post("/api/v1/lms/enrollments", &lms(), &fact).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["enterprise_enrollment"], true);
    let outside = json!({"lms_user_id": 7, "course_run_id": "course-v1:Else+X+1", "mode": "audit", "is_active": true});
    let (_, body) = server
        .post("/api/v1/lms/enrollments", &lms(), &outside)
        .await;
    assert_eq!(body["enterprise_enrollment"], false);
    let unknown =
        json!({"lms_user_id": 999, "course_run_id": RUN, "mode": "audit", "is_active": true});
    let (status, problem) = server
        .post("/api/v1/lms/enrollments", &lms(), &unknown)
        .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].clone()),
        (400, json!("lms_user_id"))
    );

    let grade = json!({"lms_user_id": 7, "course_run_id": RUN,
                       "fact": {"type": "record_grade", "percent": 0.91, "passed": true,
                                "passed_at": "2026-11-01T10:00:00Z"}});
    let (status, body, position) = send_at(
        server
            .request(Method::POST, "/api/v1/lms/completions", &lms())
            .json(&grade),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["customers"], json!([world.customer.to_string()]));
    let bad_grade = json!({"lms_user_id": 7, "course_run_id": RUN,
                           "fact": {"type": "record_grade", "percent": 7.5, "passed": true, "passed_at": null}});
    let (status, problem) = server
        .post("/api/v1/lms/completions", &lms(), &bad_grade)
        .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].clone()),
        (400, json!("percent"))
    );

    let list = format!(
        "/enterprise/api/v1/enterprise-course-enrollment/?enterprise_customer={}&min_position={}",
        world.customer,
        position.unwrap()
    );
    let (status, page) = server.get(&list, &admin_of(world.customer)).await;
    assert_eq!(status, 200);
    assert_eq!(page["results"][0]["source"], "enrollment_task");

    let leave =
        json!({"lms_user_id": 7, "course_run_id": RUN, "mode": "verified", "is_active": false});
    let (_, body, position) = send_at(
        server
            .request(Method::POST, "/api/v1/lms/enrollments", &lms())
            .json(&leave),
    )
    .await;
    assert_eq!(body["enterprise_enrollment"], true);
    let list = format!(
        "/enterprise/api/v1/enterprise-course-enrollment/?enterprise_customer={}&min_position={}",
        world.customer,
        position.unwrap()
    );
    let (_, page) = server.get(&list, &admin_of(world.customer)).await;
    assert!(page["results"][0]["unenrolled_at"].is_string(), "{page}");
}
