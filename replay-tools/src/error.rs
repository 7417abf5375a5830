//! The tool's errors, each with its exit code and a hint saying what to do.

use std::process::ExitCode;
use thiserror::Error;

/// Exit code: verify found problems.
pub const EXIT_PROBLEMS: u8 = 1;
/// Exit code: bad usage or bad input (a bad instant, an unknown learner, a bad file).
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code: the database is unreachable, or refused or failed an operation.
pub const EXIT_DATABASE: u8 = 3;

#[derive(Debug, Error)]
pub enum ToolError {
    /// The input is wrong; nothing was changed.
    #[error("{0}")]
    BadInput(String),
    /// The database could not be reached.
    #[error("cannot reach the database: {0}\n  check --database-url (or DATABASE_URL): the server is running, the database exists, and the user and password are right")]
    Unreachable(String),
    /// The database answered with an error, or a file could not be written.
    #[error("{0}")]
    Failed(String),
}

impl ToolError {
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::BadInput(message.into())
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::BadInput(_) => EXIT_BAD_INPUT,
            Self::Unreachable(_) | Self::Failed(_) => EXIT_DATABASE,
        })
    }
}

impl From<sqlx::Error> for ToolError {
    fn from(err: sqlx::Error) -> Self {
        let code = err
            .as_database_error()
            .and_then(|d| d.code())
            .map(|c| c.into_owned());
        match code.as_deref() {
            // invalid_catalog_name (no such database), invalid_authorization_specification,
            // invalid_password: the server answers but will not let us in.
            Some("3D000" | "28000" | "28P01") => return Self::Unreachable(err.to_string()),
            // undefined_table: a database without the service's tables.
            Some("42P01") => {
                return Self::Failed(format!(
                    "database error: {err}\n  is this the service's database? apply the \
                     migrations with `enterprise-service migrate` first"
                ))
            }
            _ => {}
        }
        match store::Failure::from_sqlx(err) {
            store::Failure::Unavailable(message) => Self::Unreachable(message),
            other => Self::Failed(format!("database error: {other}")),
        }
    }
}

impl From<store::Failure> for ToolError {
    fn from(err: store::Failure) -> Self {
        match err {
            store::Failure::Unavailable(message) => Self::Unreachable(message),
            other => Self::Failed(format!("database error: {other}")),
        }
    }
}

impl From<projections::runner::RunnerError> for ToolError {
    fn from(err: projections::runner::RunnerError) -> Self {
        match err {
            projections::runner::RunnerError::Database(e) => e.into(),
            other => Self::Failed(other.to_string()),
        }
    }
}

impl From<std::io::Error> for ToolError {
    fn from(err: std::io::Error) -> Self {
        Self::Failed(format!("cannot write the output: {err}"))
    }
}
