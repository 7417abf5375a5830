//! Commands of the coupon, the usage and benefit vocabulary they share with events, and the
//! checks of their inputs.

use super::error::CouponError;
use crate::error::Invalid;
use crate::ids::{CatalogId, CouponId, CourseRunId, CustomerId, LearnerId};
use crate::validate;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use uuid::Uuid;

/// The most codes one coupon may hold.
pub const MAX_CODES: usize = 10_000;
/// The most redemptions a multi-use code may allow.
pub const MAX_USES: u32 = 10_000;

/// How often each code of a coupon may be redeemed, and by whom (Open edX ecommerce's
/// `Voucher.usage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CouponUsage {
    /// Each code: one redemption in all.
    SingleUse,
    /// Each code: up to `max_uses` redemptions, by anyone.
    MultiUse { max_uses: u32 },
    /// Each code: each learner at most once, up to `max_uses` redemptions in all.
    OncePerCustomer { max_uses: u32 },
    /// Each code is bound to the first learner who redeems it; that learner may redeem it up to
    /// `max_uses` times.
    MultiUsePerCustomer { max_uses: u32 },
}

impl CouponUsage {
    /// How many live redemptions one code may have.
    pub fn max_uses(self) -> u32 {
        match self {
            Self::SingleUse => 1,
            Self::MultiUse { max_uses }
            | Self::OncePerCustomer { max_uses }
            | Self::MultiUsePerCustomer { max_uses } => max_uses,
        }
    }

    pub(crate) fn validate(self) -> Result<(), Invalid> {
        if (1..=MAX_USES).contains(&self.max_uses()) {
            Ok(())
        } else {
            Err(Invalid::new("max_uses", format!("must be 1 to {MAX_USES}")))
        }
    }
}

/// What a code is worth on the seat it buys.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CouponBenefit {
    /// A discount in percent, in (0, 100]; 100 makes the seat free.
    Percentage { value: f64 },
    /// A fixed discount in the catalog's currency, above zero.
    Absolute { value: f64 },
}

impl CouponBenefit {
    pub(crate) fn validate(self) -> Result<(), Invalid> {
        // `!(x > 0.0)` rather than `x <= 0.0`: NaN fails every comparison and must be refused.
        match self {
            Self::Percentage { value } if !(value > 0.0 && value <= 100.0) => Err(Invalid::new(
                "benefit",
                "a percentage must be above 0 and at most 100",
            )),
            Self::Absolute { value } if !(value > 0.0 && value.is_finite()) => Err(Invalid::new(
                "benefit",
                "an absolute discount must be a finite amount above 0",
            )),
            _ => Ok(()),
        }
    }
}

/// A command on one coupon. Every command but `CreateCoupon` addresses an existing coupon by its
/// stream id ([`super::coupon_stream_id`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CouponCommand {
    /// Create the coupon and its batch of codes (drawn from the `CodeGenerator` service).
    CreateCoupon {
        coupon_id: CouponId,
        customer_id: CustomerId,
        catalog_id: CatalogId,
        name: String,
        code_count: usize,
        usage: CouponUsage,
        benefit: CouponBenefit,
        valid_from: DateTime<Utc>,
        valid_until: DateTime<Utc>,
        /// Lowercase domains such as `example.com`; empty means any learner may redeem.
        email_domains: Vec<String>,
    },
    /// Reserve a code for one learner. The service layer resolved the email the admin typed to a
    /// learner id and passes only the email's domain.
    AssignCode {
        code: String,
        learner_id: LearnerId,
        email_domain: Option<String>,
    },
    /// Take back a code's reservation.
    RevokeAssignment { code: String, learner_id: LearnerId },
    /// Use a code to buy a seat in one course run.
    RedeemCode {
        code: String,
        learner_id: LearnerId,
        email_domain: Option<String>,
        course_run_id: CourseRunId,
        /// Chosen by the service layer; names this redemption in the enrollment that follows it
        /// and in its compensation.
        redemption_id: Uuid,
        at: DateTime<Utc>,
    },
    /// Give a use back when the enrollment that should follow a redemption failed.
    ReverseRedemption { redemption_id: Uuid, reason: String },
}

/// The longest reason a reversal may give.
pub(crate) const MAX_REASON: usize = 500;

/// Checks an allowed email domain the way Open edX ecommerce does (`clean_email_domains`):
/// lowercase ASCII labels of `[a-z0-9-]`, at least two labels, none starting or ending with a
/// hyphen, no `--`, and a top-level label of two or more letters.
pub(crate) fn email_domain(value: &str) -> Result<(), Invalid> {
    let invalid = || {
        Invalid::new(
            "email_domains",
            format!("'{value}' is not a lowercase domain such as example.com"),
        )
    };
    let labels: Vec<&str> = value.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    let tld = labels.last().copied().unwrap_or_default();
    let ok = value.len() <= 253
        && labels.len() >= 2
        && !value.contains("--")
        && labels.iter().all(label_ok)
        && tld.len() >= 2
        && tld.bytes().all(|b| b.is_ascii_lowercase());
    if ok {
        Ok(())
    } else {
        Err(invalid())
    }
}

/// Whether a learner's email domain is allowed: ecommerce's `is_email_valid` accepts an allowed
/// domain itself and any of its subdomains (`example.com` admits `sub.example.com`, never
/// `badexample.com`). An empty list allows every domain; a restricted coupon refuses a learner
/// whose domain is unknown.
pub(crate) fn domain_allowed(allowed: &[String], domain: Option<&str>) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let Some(domain) = domain else {
        return false;
    };
    let domain = domain.to_ascii_lowercase();
    allowed.iter().any(|a| {
        domain == *a
            || domain
                .strip_suffix(a.as_str())
                .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1)
    })
}

/// Refuses, as an invalid `email`, a learner whose email domain the coupon does not allow.
pub(crate) fn check_email_domain(allowed: &[String], domain: Option<&str>) -> Result<(), Invalid> {
    if domain_allowed(allowed, domain) {
        Ok(())
    } else {
        Err(Invalid::new(
            "email",
            "the learner's email domain is not allowed by this coupon",
        ))
    }
}

/// Checks the fields of `CreateCoupon` that need no state.
pub(crate) fn validate_creation(
    name: &str,
    code_count: usize,
    usage: CouponUsage,
    benefit: CouponBenefit,
    valid_from: DateTime<Utc>,
    valid_until: DateTime<Utc>,
    email_domains: &[String],
) -> Result<(), Invalid> {
    validate::text("name", name, 255)?;
    if !(1..=MAX_CODES).contains(&code_count) {
        return Err(Invalid::new(
            "code_count",
            format!("must be 1 to {MAX_CODES}"),
        ));
    }
    usage.validate()?;
    benefit.validate()?;
    if valid_from >= valid_until {
        return Err(Invalid::new("valid_until", "must be after valid_from"));
    }
    for (i, domain) in email_domains.iter().enumerate() {
        email_domain(domain)?;
        if email_domains[..i].contains(domain) {
            return Err(Invalid::new(
                "email_domains",
                format!("'{domain}' is listed twice"),
            ));
        }
    }
    Ok(())
}

/// A generated code must be something a learner can type: 1 to 64 ASCII letters, digits or `-`.
fn code_shape_ok(code: &str) -> bool {
    (1..=64).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The generator must give exactly `count` distinct, typeable codes.
pub(crate) fn check_generated(codes: &[String], count: usize) -> Result<(), CouponError> {
    let rejected = |why: String| Err(CouponError::GeneratedCodesRejected(why));
    if codes.len() != count {
        return rejected(format!("asked for {count} codes, got {}", codes.len()));
    }
    if let Some(bad) = codes.iter().find(|c| !code_shape_ok(c)) {
        return rejected(format!("'{bad}' is not 1 to 64 letters, digits or '-'"));
    }
    let distinct: HashSet<&str> = codes.iter().map(String::as_str).collect();
    if distinct.len() != codes.len() {
        return rejected("the codes are not distinct".to_string());
    }
    Ok(())
}
