//! The write model of the enterprise learning service: aggregates, their commands, events and
//! rules. Pure: no I/O, no clock, no randomness (time comes in commands, codes from a service).
//!
//! - [`ids`]: identifiers and the deterministic stream ids derived from natural keys.
//! - [`error`]: the kinds of domain failure and the `Invalid` field error.
//! - [`validate`]: input checks shared by the aggregates.
//! - one module per aggregate: [`consent`].
//! - [`upcast`]: upcasters for stored events of older versions.

pub mod catalog_filter;
pub mod consent;
pub mod content;
pub mod course_mode;
pub mod enrollment;
pub mod error;
pub mod ids;
pub mod membership;
pub mod upcast;
pub mod validate;
