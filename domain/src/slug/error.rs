//! Why a slug command is refused.

use crate::error::{DomainError, ErrorKind, Invalid};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SlugError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("the command's slug differs from the slug of this stream")]
    SlugMismatch,
    #[error("the slug is held by another customer")]
    SlugTaken,
    #[error("only the customer holding the slug may release it")]
    NotHolder,
}

impl DomainError for SlugError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => ErrorKind::Validation,
            Self::SlugMismatch | Self::SlugTaken => ErrorKind::Conflict,
            Self::NotHolder => ErrorKind::ForbiddenTransition,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::Invalid(invalid) => Some(invalid.field),
            _ => None,
        }
    }
}
