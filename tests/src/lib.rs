//! Helpers shared by the end-to-end tests in `tests/`: each test gets a fresh, migrated
//! database from `#[sqlx::test(migrator = "store::db::MIGRATOR")]`, which needs `DATABASE_URL`
//! and fails when PostgreSQL cannot be reached.

use domain::ids::{CustomerId, LearnerId};
use store::CommandMetadata;
use uuid::Uuid;

pub fn meta() -> CommandMetadata {
    CommandMetadata::new("test")
}

pub fn customer() -> CustomerId {
    CustomerId(Uuid::new_v4())
}

pub fn learner() -> LearnerId {
    LearnerId(Uuid::new_v4())
}

/// Reads the global log from the start until it holds `count` events, polling for up to ten
/// seconds. PostgreSQL's transaction horizon is cluster-wide, so a transaction held open by a
/// test running in parallel delays what this database's reader may take; waiting is the
/// reader's contract, not a workaround.
pub async fn read_log(pool: &sqlx::PgPool, count: usize) -> Vec<store::log::LoggedEvent> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let events = store::log::read_after(pool, store::log::LogPosition::default(), 100_000)
            .await
            .expect("reading the log");
        if events.len() >= count {
            return events;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the log shows {} of {count} events after 10 s",
            events.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
