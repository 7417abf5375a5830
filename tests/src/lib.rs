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
