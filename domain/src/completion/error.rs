//! Why a completion command is refused.

use crate::error::{DomainError, ErrorKind, Invalid};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum CompletionError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("the command's customer, learner or course run differs from this completion record's")]
    KeyMismatch,
}

impl DomainError for CompletionError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => ErrorKind::Validation,
            Self::KeyMismatch => ErrorKind::Conflict,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::Invalid(invalid) => Some(invalid.field),
            _ => None,
        }
    }
}
