//! Why a membership command is refused.

use crate::error::{DomainError, ErrorKind, Invalid};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MembershipError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("the command's learner differs from this stream's learner")]
    KeyMismatch,
    /// edX's `LinkUserToEnterpriseError`: the learner was unlinked with `is_relinkable = false`.
    #[error("the learner was unlinked from this customer and may not be linked again")]
    RelinkRefused,
    #[error("the learner is not linked to this customer")]
    NotLinked,
}

impl DomainError for MembershipError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => ErrorKind::Validation,
            Self::KeyMismatch => ErrorKind::Conflict,
            Self::RelinkRefused => ErrorKind::ForbiddenTransition,
            Self::NotLinked => ErrorKind::NotFound,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::Invalid(invalid) => Some(invalid.field),
            _ => None,
        }
    }
}
