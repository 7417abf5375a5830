//! Connecting to PostgreSQL and migrating it. One ordered migration history (`migrations/` at
//! the workspace root) serves every crate.

use sqlx::postgres::{PgPool, PgPoolOptions};
use std::time::Duration;

/// The migrations of the whole workspace, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// A pool of at most `max_connections`, failing fast when the database does not answer.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
}

/// Applies the migrations that have not run yet.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}
