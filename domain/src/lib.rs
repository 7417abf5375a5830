//! The write model of the enterprise learning service: aggregates, their commands, events and
//! rules. Pure: no I/O, no clock, no randomness (time comes in commands, codes from a service).
//!
//! - [`ids`]: identifiers and the deterministic stream ids derived from natural keys.
//! - [`error`]: the kinds of domain failure and the `Invalid` field error.
//! - [`validate`]: input checks shared by the aggregates.
//! - [`course_mode`]: enrollment modes and their upgrade order.
//! - [`catalog_filter`]: the content-filter language of catalogs.
//! - one module per aggregate, each with its commands, events, errors and tests:
//!   - [`customer`]: enterprise customers, their consent policy, branding, identity providers
//!     and catalogs; [`slug`]: the registry that keeps customer slugs unique;
//!   - [`channel`]: integration channel configurations (SAP, Degreed, Cornerstone, xAPI);
//!   - [`membership`]: a learner's memberships in customers (linked, pending, active);
//!   - [`consent`]: data sharing consent per customer x learner x course or program;
//!   - [`enrollment`]: enterprise enrollments per customer x learner x course run;
//!   - [`coupon`]: coupons, their codes, assignments and redemptions;
//!   - [`completion`]: the LMS's grade facts and the completion decided from them;
//!   - [`content`]: course, course-run and program metadata (and the discovery parser);
//!   - [`transmission`]: the outcomes of each outbox item's transmissions (the audit).
//! - [`upcast`]: upcasters for stored events of older versions.
//! - `update`: helpers for partial updates (only what changed goes into an event).

pub mod catalog_filter;
pub mod channel;
pub mod completion;
pub mod consent;
pub mod content;
pub mod coupon;
pub mod course_mode;
pub mod customer;
pub mod enrollment;
pub mod error;
pub mod ids;
pub mod membership;
pub mod slug;
pub mod transmission;
pub mod upcast;
mod update;
pub mod validate;
