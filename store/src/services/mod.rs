//! Processes that span more than one stream or reach beyond the log: each runs its steps in a
//! fixed order, with a compensation where a later step can fail after an earlier one committed.
//!
//! - [`customers`]: creating a customer and renaming its slug through the slug registry.
//! - [`enrollments`]: enrolling a learner on behalf of a customer, after the checks that span
//!   streams.
//! - [`learners`]: registering learners from the LMS and linking them by email.
//! - [`redemption`]: redeeming a coupon code, which ends in an enrollment.

pub mod customers;
pub mod enrollments;
pub mod learners;
pub mod redemption;
