//! Why an enrollment command is refused.

use crate::course_mode::CourseMode;
use crate::error::{DomainError, ErrorKind, Invalid};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EnrollmentError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("the command's customer, learner or course run differs from this enrollment's")]
    KeyMismatch,
    #[error("the learner is not enrolled in this course run")]
    NotEnrolled,
    /// edX's `CourseEnrollmentDowngradeError`.
    #[error("the enrollment may not go down from {from} to {to}")]
    DowngradeRefused { from: CourseMode, to: CourseMode },
}

impl DomainError for EnrollmentError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => ErrorKind::Validation,
            Self::KeyMismatch => ErrorKind::Conflict,
            Self::NotEnrolled => ErrorKind::NotFound,
            Self::DowngradeRefused { .. } => ErrorKind::ForbiddenTransition,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::Invalid(invalid) => Some(invalid.field),
            _ => None,
        }
    }
}
