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
