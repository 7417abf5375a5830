//! The PostgreSQL event store of the enterprise learning service, and the tables that sit
//! beside the log.
//!
//! - [`db`]: connecting, and the migrations of the whole workspace.
//! - [`command`]: executing a command on an aggregate: load, decide, append, with bounded retries
//!   on conflicts and idempotency keys; the answer names the global position reached.
//! - [`metadata`]: who and why, attached to every appended event.
//! - [`log`]: the global log reader, in commit-safe order.
//! - [`directory`]: the learner directory, the only home of personal data.
//! - [`secrets`]: secrets encrypted outside the log, referenced from events.
//! - [`codes`]: unguessable coupon codes from the operating system's CSPRNG.
//! - [`services`]: processes spanning several streams (customer slugs, learners, enrollment,
//!   redemption).
//! - [`bench`]: the raw insert baseline and the driver the benchmark programs share.
//! - [`error`]: the store's error types.

pub mod bench;
pub mod codes;
pub mod command;
pub mod db;
pub mod directory;
pub mod error;
pub mod log;
pub mod metadata;
pub mod secrets;
pub mod services;

pub use command::{Appended, EventStore};
pub use error::{CommandError, Failure};
pub use metadata::CommandMetadata;
