//! The operators' and auditors' CLI (`replay-tools`), working directly on the database.
//!
//! - [`cli`]: the command line; its doc comments are the `--help` manual.
//! - [`consent_history`]: a learner's, customer's or course's consent timeline replayed from
//!   the log, and the consent in force at an instant.
//! - [`rebuild`]: rebuilding read models with a progress bar.
//! - [`status`]: projection positions and lag, outbox depth and dead letters.
//! - [`export`] and [`import`]: the log as JSON Lines, out and into an empty store.
//! - [`verify`]: hash chains, sequences, the log reader, payloads and read models.
//! - [`output`]: tables, JSON and CSV.
//! - [`error`]: errors and exit codes.

#![forbid(unsafe_code)]

pub mod cli;
pub mod consent_history;
pub mod error;
pub mod export;
pub mod import;
pub mod output;
pub mod rebuild;
pub mod status;
pub mod verify;

use cli::{Cli, Command};
use error::ToolError;
use sqlx::PgPool;
use std::process::ExitCode;

/// Runs one command line; the exit code says how it went (see [`error`]).
pub async fn run(cli: Cli) -> Result<ExitCode, ToolError> {
    let url = cli.database_url.ok_or_else(|| {
        ToolError::bad_input("no database: give --database-url or set DATABASE_URL")
    })?;
    let pool = connect(&url).await?;
    let outcome = match cli.command {
        Command::ConsentHistory(args) => consent_history::run(&pool, &args).await,
        Command::Rebuild(args) => rebuild::run(&pool, &args).await,
        Command::Status(args) => status::run(&pool, &args).await,
        Command::Export(args) => export::run(&pool, &args).await,
        Command::Import(args) => import::run(&pool, &args).await,
        Command::Verify(args) => verify::run(&pool, &args).await,
    };
    pool.close().await;
    outcome
}

/// A small pool; a URL that does not parse is the caller's mistake, not the database's.
pub async fn connect(url: &str) -> Result<PgPool, ToolError> {
    match store::db::connect(url, 4).await {
        Ok(pool) => Ok(pool),
        Err(sqlx::Error::Configuration(e)) => Err(ToolError::bad_input(format!(
            "bad database URL: {e}\n  expected postgres://user:password@host:5432/database"
        ))),
        Err(e) => Err(ToolError::from(e)),
    }
}
