//! Why a coupon command is refused.

use crate::error::{DomainError, ErrorKind, Invalid};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum CouponError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("no such coupon")]
    CouponNotFound,
    #[error("the coupon already exists")]
    CouponAlreadyExists,
    #[error("the code generator returned unusable codes: {0}")]
    GeneratedCodesRejected(String),
    #[error("the coupon has no such code")]
    UnknownCode,
    #[error("the code is assigned to another learner")]
    CodeAlreadyAssigned,
    #[error("the code is not assigned to this learner")]
    NotAssigned,
    #[error("the code has no uses left")]
    CodeUsedUp,
    #[error("the coupon is not valid at this time")]
    CouponNotValidAt,
    #[error("the code is reserved for another learner")]
    CodeAssignedToAnother,
    #[error("the single-use code is already redeemed")]
    CodeAlreadyRedeemed,
    #[error("this learner already redeemed the code")]
    AlreadyRedeemedByLearner,
    #[error("the code is bound to the learner who first redeemed it")]
    CodeBoundToAnotherLearner,
    #[error("the redemption id is already used by another redemption")]
    RedemptionIdReused,
    #[error("no such redemption")]
    UnknownRedemption,
}

impl DomainError for CouponError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => ErrorKind::Validation,
            Self::CouponNotFound | Self::UnknownCode | Self::UnknownRedemption => {
                ErrorKind::NotFound
            }
            // A misbehaving generator clashes like a duplicate: a retry draws fresh codes.
            Self::CouponAlreadyExists
            | Self::GeneratedCodesRejected(_)
            | Self::CodeAlreadyAssigned
            | Self::CodeUsedUp
            | Self::CodeAlreadyRedeemed
            | Self::AlreadyRedeemedByLearner
            | Self::CodeBoundToAnotherLearner
            | Self::RedemptionIdReused => ErrorKind::Conflict,
            Self::NotAssigned | Self::CouponNotValidAt | Self::CodeAssignedToAnother => {
                ErrorKind::ForbiddenTransition
            }
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::Invalid(invalid) => Some(invalid.field),
            _ => None,
        }
    }
}
