//! The progress report over HTTP: JSON pages and the streamed CSV, its filters, the role x
//! tenant matrix and malformed filters.

use chrono::{DateTime, Duration, Utc};
use domain::consent::ConsentSubject;
use domain::consent::{consent_stream_id, Action, Consent, ConsentCommand, ConsentSource};
use domain::course_mode::CourseMode;
use domain::enrollment::{enrollment_stream_id, Enrollment, EnrollmentCommand, EnrollmentSource};
use domain::ids::{CourseRunId, LearnerId};
use e2e_tests::api::{admin_of, auditor, learner_of, operator, Server};
use e2e_tests::{consent_not_required, meta, World, RUN};
use projections::read_models::enrollments::REPORT_COLUMNS;
use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

async fn enroll(world: &World, learner: LearnerId, at: DateTime<Utc>) {
    let run = CourseRunId(RUN.into());
    let command = EnrollmentCommand::Enroll {
        customer_id: world.customer,
        learner_id: learner,
        course_run_id: run.clone(),
        mode: CourseMode::Verified,
        source: EnrollmentSource::EnterpriseApi,
        redemption_id: None,
        at,
    };
    world
        .store
        .execute::<Enrollment>(
            &enrollment_stream_id(world.customer, learner, &run),
            command,
            &(),
            &meta(),
        )
        .await
        .expect("enrolling");
}

/// Two learners enrolled ten days apart; the second granted consent. The time, and the
/// position of the last write (for `min_position`).
async fn world(pool: sqlx::PgPool) -> (Server, World, DateTime<Utc>, i64) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let first = world.learner(7).await;
    let second = world.learner(8).await;
    let now = Utc::now();
    enroll(&world, first, now - Duration::days(20)).await;
    enroll(&world, second, now - Duration::days(10)).await;
    let subject = ConsentSubject::for_course_id(RUN);
    let grant = ConsentCommand {
        customer_id: world.customer,
        learner_id: second,
        subject: subject.clone(),
        source: ConsentSource::ConsentPage,
        action: Action::Grant,
    };
    let last = world
        .store
        .execute::<Consent>(
            &consent_stream_id(world.customer, second, &subject),
            grant,
            &(),
            &meta(),
        )
        .await
        .expect("granting")
        .position
        .expect("a position");
    let server = Server::start(pool).await;
    server.settle().await;
    (server, world, now, last)
}

fn path(world: &World, query: &str) -> String {
    format!(
        "/api/v1/customers/{}/reports/progress{query}",
        world.customer
    )
}

fn usernames(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["user_username"].as_str().unwrap().to_string())
        .collect()
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn the_report_pages_and_filters_as_json(pool: sqlx::PgPool) {
    let (server, world, now, last) = world(pool).await;
    let admin = admin_of(world.customer);
    let first = path(&world, &format!("?min_position={last}"));
    let (status, page) = server.get(&first, &admin).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["count"], 2);
    assert_eq!(usernames(&page), ["learner7", "learner8"]);
    let row = &page["results"][0];
    let keys: Vec<&str> = row
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = REPORT_COLUMNS.to_vec();
    expected.sort_unstable();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, expected, "the JSON row has the report's columns");
    assert_eq!(row["user_email"], "learner7@example.com");
    assert_eq!(row["courserun_key"], RUN);
    assert_eq!(row["course_key"], "edX+DemoX", "{row}");
    assert_eq!(
        row["enterprise_customer_uuid"],
        world.customer.0.to_string()
    );

    let (_, page) = server
        .get(&path(&world, "?page_size=1&page=2"), &admin)
        .await;
    assert_eq!(usernames(&page), ["learner8"]);
    assert_eq!(page["num_pages"], 2);
    assert!(page["next"].is_null() && page["previous"].is_string());

    let (_, page) = server
        .get(&path(&world, "?consent_granted_only=true"), &admin)
        .await;
    assert_eq!(usernames(&page), ["learner8"]);
    let from = (now - Duration::days(15)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (_, page) = server
        .get(&path(&world, &format!("?enrolled_from={from}")), &admin)
        .await;
    assert_eq!(usernames(&page), ["learner8"]);
    let (_, page) = server
        .get(&path(&world, &format!("?enrolled_until={from}")), &admin)
        .await;
    assert_eq!(usernames(&page), ["learner7"]);
    let (_, page) = server
        .get(&path(&world, "?course_key=edX%2BDemoX"), &admin)
        .await;
    assert_eq!(page["count"], 2);
    let (_, page) = server
        .get(&path(&world, "?course_key=Other%2BCourse"), &admin)
        .await;
    assert_eq!(page["count"], 0);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn the_csv_streams_every_row_in_progress_v3_order(pool: sqlx::PgPool) {
    let (server, world, _, last) = world(pool).await;
    let first = path(&world, &format!(".csv?min_position={last}"));
    let response = server
        .request(Method::GET, &first, &admin_of(world.customer))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], REPORT_COLUMNS.join(","));
    let email = REPORT_COLUMNS
        .iter()
        .position(|c| *c == "user_email")
        .unwrap();
    let consent = REPORT_COLUMNS
        .iter()
        .position(|c| *c == "is_consent_granted")
        .unwrap();
    let first: Vec<&str> = lines[1].split(',').collect();
    let second: Vec<&str> = lines[2].split(',').collect();
    assert_eq!(first.len(), REPORT_COLUMNS.len());
    assert_eq!(
        (first[email], first[consent]),
        ("learner7@example.com", "false")
    );
    assert_eq!(
        (second[email], second[consent]),
        ("learner8@example.com", "true")
    );

    let granted = server
        .request(
            Method::GET,
            &path(&world, ".csv?consent_granted_only=true"),
            &admin_of(world.customer),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(granted.matches("\r\n").count(), 2, "{granted}");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn only_administrators_of_the_customer_read_its_report(pool: sqlx::PgPool) {
    let (server, world, _, _) = world(pool).await;
    for suffix in ["", ".csv"] {
        let url = path(&world, suffix);
        assert_eq!(server.anonymous(Method::GET, &url).await, 401);
        for forbidden in [
            admin_of(Uuid::new_v4()),
            learner_of("learner7", world.customer),
            auditor(),
        ] {
            let (status, body) = server.get(&url, &forbidden).await;
            assert_eq!(status, 403, "{url}: {body}");
        }
        let (status, _) = server.get(&url, &operator()).await;
        assert_eq!(status, 200);
    }
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn malformed_filters_are_named(pool: sqlx::PgPool) {
    let (server, world, _, _) = world(pool).await;
    let admin = admin_of(world.customer);
    let cases = [
        ("?enrolled_from=yesterday", "enrolled_from"),
        ("?enrolled_until=2026-13-01", "enrolled_until"),
        (
            "?enrolled_from=2026-02-01T00:00:00Z&enrolled_until=2026-01-01T00:00:00Z",
            "enrolled_until",
        ),
        ("?consent_granted_only=maybe", "consent_granted_only"),
        ("?page=0", "page"),
        ("?page_size=abc", "page_size"),
        ("?min_position=-3", "min_position"),
    ];
    for suffix in ["", ".csv"] {
        for (query, field) in cases {
            let url = path(&world, &format!("{suffix}{query}"));
            let (status, body) = server.get(&url, &admin).await;
            assert_eq!(status, 400, "{url}: {body}");
            assert_eq!(body["errors"][0]["field"], field, "{url}: {body}");
        }
        let (status, body) = server
            .get(&path(&world, &format!("{suffix}?colour=blue")), &admin)
            .await;
        assert_eq!(status, 400, "{body}");
    }
}
