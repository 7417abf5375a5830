//! What every aggregate error has in common: the kind of failure it is, so that each layer above
//! (the store, the HTTP API) can map it once, and the field a validation failure is about.

use thiserror::Error;

/// The kind of a domain failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The command's input is malformed or out of range (names a field).
    Validation,
    /// The command addresses something that does not exist.
    NotFound,
    /// The command clashes with existing state (a duplicate, a limit reached).
    Conflict,
    /// The command is not allowed in the aggregate's current state.
    ForbiddenTransition,
}

/// Implemented by every aggregate's error enum.
pub trait DomainError: std::error::Error {
    fn kind(&self) -> ErrorKind;
    /// The input field a validation error is about.
    fn field(&self) -> Option<&'static str> {
        None
    }
}

/// A rejected input: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    pub field: &'static str,
    pub reason: String,
}

impl Invalid {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}
