//! Errors of the store. A command fails either for a domain reason (the aggregate's own error
//! enum) or for a store reason ([`Failure`]); [`CommandError::kind`] classifies both, so the API
//! maps each kind to a status in one place.

use cqrs_es::AggregateError;
use domain::error::{DomainError, ErrorKind, Invalid};
use thiserror::Error;

/// A failure of the store itself, whatever the aggregate.
#[derive(Debug, Error)]
pub enum Failure {
    /// Input the store checks itself (an idempotency key) is malformed.
    #[error(transparent)]
    Invalid(Invalid),
    /// Concurrent writers kept changing the stream; every retry lost the race.
    #[error("the stream kept changing concurrently ({attempts} attempts); try again")]
    Conflict { attempts: u32 },
    /// The database cannot be reached, or no connection was free in time.
    #[error("the event store is unavailable: {0}")]
    Unavailable(String),
    /// A stored event does not deserialize into the current event types.
    #[error("a stored event could not be read: {0}")]
    Corrupt(String),
    /// Anything else the database reported.
    #[error("unexpected event store error: {0}")]
    Unexpected(String),
}

impl Failure {
    /// Classifies a database error: connection trouble and a server that is shutting down,
    /// out of resources or cancelling statements is `Unavailable`; a serialization failure or
    /// deadlock is a `Conflict` (worth retrying); the rest is `Unexpected`.
    pub fn from_sqlx(err: sqlx::Error) -> Self {
        let code = err
            .as_database_error()
            .and_then(|d| d.code())
            .map(|c| c.into_owned());
        match (&err, code.as_deref()) {
            (
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed,
                _,
            ) => Self::Unavailable(err.to_string()),
            // Class 08: connection exception; 53: insufficient resources; 57: operator
            // intervention (shutdown, crash recovery, statement timeout).
            (_, Some(code))
                if code.starts_with("08") || code.starts_with("53") || code.starts_with("57") =>
            {
                Self::Unavailable(err.to_string())
            }
            (_, Some("40001" | "40P01")) => Self::Conflict { attempts: 1 },
            _ => Self::Unexpected(err.to_string()),
        }
    }

    /// Maps what cqrs-es reports for a load or a commit; a conflict is the caller's to handle,
    /// so it is not expected here and counts as unexpected.
    pub(crate) fn from_aggregate<E: std::error::Error>(err: AggregateError<E>) -> Self {
        match err {
            AggregateError::DatabaseConnectionError(e) => Self::Unavailable(e.to_string()),
            AggregateError::DeserializationError(e) => Self::Corrupt(e.to_string()),
            AggregateError::UnexpectedError(e) => match e.downcast::<sqlx::Error>() {
                Ok(sqlx_err) => Self::from_sqlx(*sqlx_err),
                Err(e) => Self::Unexpected(e.to_string()),
            },
            AggregateError::AggregateConflict => Self::Conflict { attempts: 1 },
            AggregateError::UserError(e) => Self::Unexpected(e.to_string()),
        }
    }
}

impl From<sqlx::Error> for Failure {
    fn from(err: sqlx::Error) -> Self {
        Self::from_sqlx(err)
    }
}

/// Why a command was not carried out.
#[derive(Debug, Error)]
pub enum CommandError<E> {
    /// The aggregate refused the command.
    #[error(transparent)]
    Domain(E),
    /// The store could not carry it out.
    #[error(transparent)]
    Store(#[from] Failure),
}

/// Every kind of command failure, for mapping to statuses and exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Validation,
    NotFound,
    Conflict,
    ForbiddenTransition,
    Unavailable,
    Internal,
}

impl From<ErrorKind> for FailureKind {
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::Validation => Self::Validation,
            ErrorKind::NotFound => Self::NotFound,
            ErrorKind::Conflict => Self::Conflict,
            ErrorKind::ForbiddenTransition => Self::ForbiddenTransition,
        }
    }
}

impl Failure {
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Invalid(_) => FailureKind::Validation,
            Self::Conflict { .. } => FailureKind::Conflict,
            Self::Unavailable(_) => FailureKind::Unavailable,
            Self::Corrupt(_) | Self::Unexpected(_) => FailureKind::Internal,
        }
    }
}

impl<E: DomainError> CommandError<E> {
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Domain(e) => e.kind().into(),
            Self::Store(f) => f.kind(),
        }
    }

    /// The input field a validation failure is about.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Domain(e) => e.field(),
            Self::Store(Failure::Invalid(i)) => Some(i.field),
            Self::Store(_) => None,
        }
    }
}
