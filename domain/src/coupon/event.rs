//! Events of the coupon. Each carries the coupon and its customer, and every learner-facing event
//! the learner, so a projection (the customer's code report, a learner's codes) needs no other
//! event to place it.

use super::command::{CouponBenefit, CouponUsage};
use crate::ids::{CatalogId, CouponId, CourseRunId, CustomerId, LearnerId};
use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CouponEvent {
    /// The coupon exists with these terms and codes; `codes.len()` is the count bought.
    CouponCreated {
        coupon_id: CouponId,
        customer_id: CustomerId,
        catalog_id: CatalogId,
        name: String,
        usage: CouponUsage,
        benefit: CouponBenefit,
        valid_from: DateTime<Utc>,
        valid_until: DateTime<Utc>,
        email_domains: Vec<String>,
        codes: Vec<String>,
    },
    /// A code is reserved for one learner; only that learner may redeem it now.
    CodeAssigned {
        coupon_id: CouponId,
        customer_id: CustomerId,
        code: String,
        learner_id: LearnerId,
    },
    /// A code's reservation is taken back.
    CodeAssignmentRevoked {
        coupon_id: CouponId,
        customer_id: CustomerId,
        code: String,
        learner_id: LearnerId,
    },
    /// A code bought a seat: one use of it is spent.
    CodeRedeemed {
        coupon_id: CouponId,
        customer_id: CustomerId,
        catalog_id: CatalogId,
        code: String,
        redemption_id: Uuid,
        learner_id: LearnerId,
        course_run_id: CourseRunId,
        at: DateTime<Utc>,
    },
    /// A redemption is compensated (its enrollment failed): its use is given back.
    RedemptionReversed {
        coupon_id: CouponId,
        customer_id: CustomerId,
        code: String,
        redemption_id: Uuid,
        learner_id: LearnerId,
        course_run_id: CourseRunId,
        /// Written by the service layer (an error class, not a message quoting user input).
        reason: String,
    },
}

impl DomainEvent for CouponEvent {
    fn event_type(&self) -> String {
        match self {
            Self::CouponCreated { .. } => "CouponCreated",
            Self::CodeAssigned { .. } => "CodeAssigned",
            Self::CodeAssignmentRevoked { .. } => "CodeAssignmentRevoked",
            Self::CodeRedeemed { .. } => "CodeRedeemed",
            Self::RedemptionReversed { .. } => "RedemptionReversed",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}
