//! Why a content command is refused.

use crate::error::{DomainError, ErrorKind, Invalid};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ContentError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("the command's content type or key differs from this content item's")]
    KeyMismatch,
    #[error("the content item was never published")]
    ContentNotFound,
}

impl DomainError for ContentError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => ErrorKind::Validation,
            Self::KeyMismatch => ErrorKind::Conflict,
            Self::ContentNotFound => ErrorKind::NotFound,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::Invalid(invalid) => Some(invalid.field),
            _ => None,
        }
    }
}
