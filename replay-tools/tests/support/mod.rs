//! Running the real `replay-tools` binary against a test database, and preparing logs for it.

#![allow(dead_code)]

use domain::consent::{Action, Consent, ConsentCommand, ConsentSource, ConsentSubject};
use domain::ids::{CourseKey, CustomerId, LearnerId};
use sqlx::PgPool;
use std::process::Output;
use store::{CommandMetadata, EventStore};

/// The URL of the database behind `pool` (a `#[sqlx::test]` database): DATABASE_URL with the
/// database name replaced.
pub fn url_of(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL must be set for these tests");
    let name = pool
        .connect_options()
        .get_database()
        .expect("the test pool names its database")
        .to_string();
    store::db::with_database(&base, &name)
}

/// Runs `replay-tools --database-url <url> <args>`.
pub fn replay(url: &str, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_replay-tools"))
        .arg("--database-url")
        .arg(url)
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("running replay-tools")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit code, showing what the tool printed when it differs.
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
}

pub fn course(key: &str) -> ConsentSubject {
    ConsentSubject::Course(CourseKey(key.into()))
}

/// Executes one consent command and returns the global position of its event.
pub async fn consent(
    store: &EventStore,
    customer: CustomerId,
    learner: LearnerId,
    subject: ConsentSubject,
    source: ConsentSource,
    action: Action,
    actor: &str,
) -> i64 {
    let stream = domain::consent::consent_stream_id(customer, learner, &subject);
    let command = ConsentCommand {
        customer_id: customer,
        learner_id: learner,
        subject,
        source,
        action,
    };
    store
        .execute::<Consent>(&stream, command, &(), &CommandMetadata::new(actor))
        .await
        .expect("a consent command")
        .position
        .expect("the command appended an event")
}

/// A second, empty database beside the test's, dropped by [`drop_database`].
pub async fn create_database(pool: &PgPool, name: &str) -> String {
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(pool)
        .await
        .expect("creating a second database");
    store::db::with_database(&url_of(pool), name)
}

pub async fn drop_database(pool: &PgPool, name: &str) {
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(pool)
        .await
        .expect("dropping the second database");
}

/// A log touching every read model: a customer with a catalog and a course run (the
/// end-to-end world), two linked learners, consents, an enrollment, and a passing grade, a
/// command that appends two events (the grade and the completion).
pub async fn rich_log(pool: &PgPool) -> e2e_tests::World {
    use domain::completion::{Completion, CompletionCommand, LmsFact};
    use domain::course_mode::CourseMode;
    use domain::enrollment::{Enrollment, EnrollmentCommand, EnrollmentSource};
    use domain::ids::CourseRunId;
    let world = e2e_tests::World::new(pool.clone(), e2e_tests::consent_required()).await;
    let ada = world.learner(1).await;
    let bob = world.learner(2).await;
    let demo = course("edX+DemoX");
    for (learner, action) in [(ada, Action::Grant), (bob, Action::Decline)] {
        consent(
            &world.store,
            world.customer,
            learner,
            demo.clone(),
            ConsentSource::ConsentPage,
            action,
            "learner",
        )
        .await;
    }
    consent(
        &world.store,
        world.customer,
        ada,
        demo.clone(),
        ConsentSource::Admin,
        Action::Revoke,
        "admin-1",
    )
    .await;
    consent(
        &world.store,
        world.customer,
        ada,
        demo,
        ConsentSource::ConsentPage,
        Action::Grant,
        "learner",
    )
    .await;
    let run = CourseRunId(e2e_tests::RUN.into());
    let at = chrono::Utc::now();
    let enroll = EnrollmentCommand::Enroll {
        customer_id: world.customer,
        learner_id: ada,
        course_run_id: run.clone(),
        mode: CourseMode::Verified,
        source: EnrollmentSource::EnterpriseApi,
        redemption_id: None,
        at,
    };
    let stream = domain::enrollment::enrollment_stream_id(world.customer, ada, &run);
    world
        .store
        .execute::<Enrollment>(&stream, enroll, &(), &e2e_tests::meta())
        .await
        .expect("enrolling");
    let grade = CompletionCommand {
        customer_id: world.customer,
        learner_id: ada,
        course_run_id: run.clone(),
        mode: CourseMode::Verified,
        at,
        fact: LmsFact::RecordGrade {
            percent: 0.9,
            passed: true,
            passed_at: Some(at),
        },
    };
    let stream = domain::completion::completion_stream_id(world.customer, ada, &run);
    let appended = world
        .store
        .execute::<Completion>(&stream, grade, &(), &e2e_tests::meta())
        .await
        .expect("recording a passing grade");
    assert_eq!(
        appended.event_types.len(),
        2,
        "a passing grade appends the grade and the completion: {:?}",
        appended.event_types
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .unwrap();
    e2e_tests::read_log(pool, count as usize).await;
    world
}

/// Every row of every read model table, as sorted JSON text, table by table.
pub async fn read_models(pool: &PgPool) -> Vec<(String, Vec<String>)> {
    let mut all = Vec::new();
    for projection in projections::read_models::all() {
        for table in projection.tables() {
            let rows: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT to_jsonb(t)::text FROM {table} t ORDER BY 1"
            ))
            .fetch_all(pool)
            .await
            .unwrap();
            all.push((table.to_string(), rows));
        }
    }
    all
}

/// The whole log as stored (global position order), hashes included.
pub async fn log_rows(
    pool: &PgPool,
) -> Vec<(i64, String, String, i64, String, String, String, String)> {
    sqlx::query_as(
        "SELECT global_position, aggregate_type, aggregate_id, sequence, event_type,
                payload::text, metadata::text, encode(hash, 'hex')
           FROM events ORDER BY global_position",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}
