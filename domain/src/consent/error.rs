//! Why a consent command is refused.

use crate::error::{DomainError, ErrorKind, Invalid};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConsentError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("the command's customer, learner or subject differs from this consent record's")]
    KeyMismatch,
    #[error("consent is granted: revoke it instead of declining")]
    GrantedUseRevoke,
    #[error("consent is not granted, so there is nothing to revoke")]
    NotGranted,
}

impl DomainError for ConsentError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => ErrorKind::Validation,
            Self::KeyMismatch => ErrorKind::Conflict,
            Self::GrantedUseRevoke | Self::NotGranted => ErrorKind::ForbiddenTransition,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::Invalid(invalid) => Some(invalid.field),
            _ => None,
        }
    }
}
