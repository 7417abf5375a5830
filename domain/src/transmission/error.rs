//! Why a transmission record refuses an attempt.

use crate::error::{DomainError, ErrorKind, Invalid};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransmissionError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("the attempt's item, configuration, customer or channel differs from this record's")]
    KeyMismatch,
}

impl DomainError for TransmissionError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => ErrorKind::Validation,
            Self::KeyMismatch => ErrorKind::Conflict,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::Invalid(invalid) => Some(invalid.field),
            Self::KeyMismatch => None,
        }
    }
}
